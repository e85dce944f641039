// A busybox OCI image built locally, for the end-to-end tests (no registry):
// the harness's busybox rootfs as one uncompressed layer, an image config
// with PATH and Cmd, a manifest, and index.json carrying the names both
// `ctr images import` and `podman load` understand. Packed as one tar.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { makeRootfs } from './harness';

function sha256(b: Buffer): string {
  return createHash('sha256').update(b).digest('hex');
}

function tar(dir: string, out: string): void {
  const r = spawnSync('tar', ['--numeric-owner', '--owner=0', '--group=0', '-C', dir, '-cf', out, '.'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`tar ${dir}: ${r.stderr}`);
}

/** Build the image under work/; returns the path of the OCI layout tar. */
export function buildBusyboxImage(work: string, name: string): string {
  const rootfs = join(work, 'image-rootfs');
  makeRootfs(rootfs);
  const layout = join(work, 'image-layout');
  const blobs = join(layout, 'blobs', 'sha256');
  mkdirSync(blobs, { recursive: true });
  const put = (b: Buffer): { digest: string; size: number } => {
    const h = sha256(b);
    writeFileSync(join(blobs, h), b);
    return { digest: `sha256:${h}`, size: b.length };
  };
  const layerTar = join(work, 'layer.tar');
  tar(rootfs, layerTar);
  const layer = put(readFileSync(layerTar));
  const config = put(Buffer.from(JSON.stringify({
    architecture: process.arch === 'x64' ? 'amd64' : process.arch,
    os: 'linux',
    config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['sh'] },
    rootfs: { type: 'layers', diff_ids: [layer.digest] },
    history: [{ created_by: 'tsrun tests: busybox-static' }],
  })));
  const manifest = put(Buffer.from(JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', ...layer }],
  })));
  writeFileSync(join(layout, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(join(layout, 'index.json'), JSON.stringify({
    schemaVersion: 2,
    manifests: [{
      mediaType: 'application/vnd.oci.image.manifest.v1+json', ...manifest,
      annotations: { 'io.containerd.image.name': `docker.io/library/busybox:${name}`, 'org.opencontainers.image.ref.name': name },
    }],
  }));
  const out = join(work, 'busybox-image.tar');
  tar(layout, out);
  return out;
}
