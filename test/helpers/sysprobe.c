/* sysprobe [--i386|--x32] NR [ARG...]: make one raw syscall and print
 * "ret=R errno=E". For seccomp tests: --i386 enters through int $0x80 (the
 * kernel's i386 table, AUDIT_ARCH_I386) and --x32 sets the x32 bit, so one
 * static x86_64 binary exercises every arch path of a filter. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	int mode = 0, i = 1;
	if (i < argc && !strcmp(argv[i], "--i386")) mode = 1, i++;
	else if (i < argc && !strcmp(argv[i], "--x32")) mode = 2, i++;
	if (i >= argc)
		return 2;
	long nr = strtol(argv[i++], NULL, 0);
	unsigned long long a[6] = {0};
	for (int j = 0; j < 6 && i < argc; j++, i++)
		a[j] = strtoull(argv[i], NULL, 0);
	long r;
	int e = 0;
#if defined(__x86_64__)
	if (mode == 1) {
		long ret;
		unsigned int b = (unsigned int)a[0], c = (unsigned int)a[1], d = (unsigned int)a[2];
		unsigned int si = (unsigned int)a[3], di = (unsigned int)a[4];
		__asm__ volatile("int $0x80" : "=a"(ret) : "a"(nr), "b"(b), "c"(c), "d"(d), "S"(si), "D"(di) : "memory", "r8", "r9", "r10", "r11");
		r = (int)ret;
		if (r < 0 && r > -4096) e = (int)-r, r = -1;
		printf("ret=%ld errno=%d\n", r, e);
		return 0;
	}
	if (mode == 2)
		nr |= 0x40000000;
#endif
	errno = 0;
	r = syscall(nr, a[0], a[1], a[2], a[3], a[4], a[5]);
	e = r < 0 ? errno : 0;
	printf("ret=%ld errno=%d\n", r, e);
	return 0;
}
