import { existsSync, mkdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { CIFAR_TEST_FILE, CIFAR_TRAIN_FILES } from './cifar.ts';
import { loadRaw, type DatasetName } from './datasets.ts';
import { DataError, describeFsError } from './errors.ts';
import { DEFAULT_DOWNLOAD_CAP, downloadFile, tryUnlink, type DownloadFileOptions, type FileOutcome } from './http-download.ts';
import { extractMembers } from './tar.ts';

// `svdd data download`: dataset file tables and mirrors here; one file's HTTP transfer and the tar reader
// live in their own modules and are part of this module's interface.
export { downloadFile, type DownloadFileOptions, type FileOutcome } from './http-download.ts';
export { readTar, type TarEntry } from './tar.ts';

export interface RemoteFile {
  /** Name relative to the base URL; also the name it is saved under. */
  name: string;
  /** Expected MD5 of the file as served (hex). */
  md5: string;
  /** Its size in bytes as served: the download is stopped a little past it (see downloadCap). */
  size?: number;
  /**
   * For archives: the members to extract, matched by base name and written flat into the
   * target directory; the archive itself is then deleted unless `keepArchive`.
   */
  extract?: readonly string[];
}

export interface DatasetSource {
  baseUrl: string;
  files: readonly RemoteFile[];
}

/**
 * Official locations, the MD5s torchvision publishes for them and their sizes. Every host is
 * https: Fashion-MNIST's usual address is an S3 website endpoint, which serves plain http only,
 * so the same bucket is read through its https REST endpoint (the MD5 check is what vouches for
 * the bytes either way).
 */
export const DOWNLOAD_SOURCES: Readonly<Record<DatasetName, DatasetSource>> = {
  'mnist': {
    baseUrl: 'https://ossci-datasets.s3.amazonaws.com/mnist/',
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: 'f68b3c2dcbeaaa9fbdd348bbdeb94873', size: 9912422 },
      { name: 'train-labels-idx1-ubyte.gz', md5: 'd53e105ee54ea40749a09fcbcd1e9432', size: 28881 },
      { name: 't10k-images-idx3-ubyte.gz', md5: '9fb629c4189551a2d022fa330f9573f3', size: 1648877 },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'ec29112dd5afa0611ce80d1b7f02629c', size: 4542 },
    ],
  },
  'fashion-mnist': {
    baseUrl: 'https://fashion-mnist.s3.eu-central-1.amazonaws.com/',
    files: [
      { name: 'train-images-idx3-ubyte.gz', md5: '8d4fb7e6c68d591d4c3dfef9ec88bf0d', size: 26421880 },
      { name: 'train-labels-idx1-ubyte.gz', md5: '25c81989df183df01b3e8a0aad5dffbe', size: 29515 },
      { name: 't10k-images-idx3-ubyte.gz', md5: 'bef4ecab320f06d8554ea6380940ec79', size: 4422102 },
      { name: 't10k-labels-idx1-ubyte.gz', md5: 'bb300cfdad3c16e7a12a480ee83cd310', size: 5148 },
    ],
  },
  'cifar10': {
    baseUrl: 'https://www.cs.toronto.edu/~kriz/',
    files: [
      {
        name: 'cifar-10-binary.tar.gz',
        md5: 'c32a1d4ab5d03f1284b67883e8d87530',
        size: 170052171,
        extract: [...CIFAR_TRAIN_FILES, CIFAR_TEST_FILE, 'batches.meta.txt'],
      },
    ],
  },
};

/** The most bytes accepted for `f`: its expected size plus 10% and 64 KiB, else DEFAULT_DOWNLOAD_CAP. */
export function downloadCap(f: RemoteFile): number {
  return f.size !== undefined ? Math.ceil(f.size * 1.1) + 65536 : DEFAULT_DOWNLOAD_CAP;
}

/** Environment variable naming a mirror: a base URL with one folder per dataset (mnist/, fashion-mnist/, cifar10/). */
export const MIRROR_ENV = 'SVDD_DATA_MIRROR';

function httpUrl(text: string, what: string): URL {
  let url: URL | null = null;
  try { url = new URL(text); } catch { /* reported below */ }
  if (url === null || (url.protocol !== 'http:' && url.protocol !== 'https:')) {
    throw new DataError(`${what} '${text}' is not an http(s) URL (e.g. https://mirror.example.org/datasets/)`);
  }
  return url;
}

const withSlash = (u: string): string => (u.endsWith('/') ? u : `${u}/`);

/**
 * Where `name`'s files are fetched from: `override` (the --base-url flag: the folder holding that
 * dataset's files), else `$SVDD_DATA_MIRROR/<name>/`, else the official host. Invalid URLs and
 * schemes other than http(s) are one-line DataErrors.
 */
export function resolveBaseUrl(name: DatasetName, override?: string): string {
  if (override !== undefined) return withSlash(httpUrl(override, 'base URL').href);
  const mirror = process.env[MIRROR_ENV];
  if (mirror !== undefined && mirror.trim() !== '') {
    return new URL(`${name}/`, withSlash(httpUrl(mirror.trim(), MIRROR_ENV).href)).href;
  }
  return DOWNLOAD_SOURCES[name].baseUrl;
}

export interface DownloadOptions extends DownloadFileOptions {
  /** Overrides the dataset's base URL (--base-url; mirrors, tests); see resolveBaseUrl. */
  baseUrl?: string;
  /** Overrides the dataset's file table (tests). */
  files?: readonly RemoteFile[];
  keepArchive?: boolean;
  /** Load the result with the dataset reader afterwards; default true. */
  verify?: boolean;
}

export interface DownloadResult {
  dir: string;
  files: { name: string; outcome: FileOutcome | 'extracted' }[];
}

/**
 * Backend of `svdd data download <dataset> --dir DIR`: fetches the official files into `dir`
 * (created if needed), skipping what is already there and verified, then checks the result
 * loads with the dataset reader.
 */
export async function downloadDataset(
  name: DatasetName, dir: string, opts: DownloadOptions = {},
): Promise<DownloadResult> {
  const source = DOWNLOAD_SOURCES[name];
  if (source === undefined) {
    throw new DataError(`unknown dataset '${String(name)}'; expected one of ${Object.keys(DOWNLOAD_SOURCES).join(', ')}`);
  }
  const target = resolve(dir);
  try {
    mkdirSync(target, { recursive: true });
  } catch (e) {
    throw new DataError(`${target}: cannot create the download directory: ${describeFsError(e)}`, target);
  }
  const log = opts.log ?? (() => {});
  const base = resolveBaseUrl(name, opts.baseUrl);
  if (base !== source.baseUrl) log(`${name}: downloading from ${base} instead of ${source.baseUrl} (the MD5 check stays)`);
  const result: DownloadResult = { dir: target, files: [] };
  for (const f of opts.files ?? source.files) {
    const url = new URL(f.name, base).href;
    const dest = join(target, f.name);
    const fileOpts: DownloadFileOptions = { ...opts, maxBytes: opts.maxBytes ?? downloadCap(f) };
    if (f.extract) {
      // Extracted members are written atomically, so their presence means they are whole.
      if (f.extract.every((m) => existsSync(join(target, m)))) {
        result.files.push({ name: f.name, outcome: 'skipped' });
        continue;
      }
      log(`${f.name}: fetching ${url}`);
      await downloadFile(url, dest, f.md5, fileOpts);
      log(`${f.name}: extracting ${f.extract.join(', ')}`);
      extractMembers(dest, target, f.extract);
      if (!opts.keepArchive) tryUnlink(dest);
      result.files.push({ name: f.name, outcome: 'extracted' });
      continue;
    }
    if (!existsSync(dest)) log(`${f.name}: fetching ${url}`);
    const outcome = await downloadFile(url, dest, f.md5, fileOpts);
    result.files.push({ name: f.name, outcome });
  }
  if (opts.verify ?? true) {
    const raw = loadRaw(name, target);
    log(`${name}: ${raw.train.count} training and ${raw.test.count} test images in ${raw.source}`);
  }
  return result;
}
