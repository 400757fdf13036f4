/**
 * Where each named dataset comes from. Checksums: for the IDX datasets the sha256 is of the
 * decompressed content (mirrors and Debian's package re-compress the .gz files, the bytes inside
 * are the originals); CIFAR-10's archive is checked against the MD5 its page publishes.
 */
export interface RemoteFile {
  /** File name on disk. */
  name: string;
  /** Canonical address first, then mirrors. */
  urls: string[];
  check: { kind: 'sha256-content' | 'md5'; value: string };
}

export interface DatasetSource {
  name: string;
  /** Sub-folder names to look for under a data root. */
  folders: string[];
  files: RemoteFile[];
}

const FASHION = 'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/';
const MNIST = ['https://yann.lecun.com/exdb/mnist/', 'https://ossci-datasets.s3.amazonaws.com/mnist/'];

export const SOURCES: Record<string, DatasetSource> = {
  'fashion-mnist': {
    name: 'fashion-mnist',
    folders: ['fashion-mnist', 'fashion_mnist', 'FashionMNIST'],
    files: [
      {
        name: 'train-images-idx3-ubyte.gz',
        urls: [FASHION + 'train-images-idx3-ubyte.gz'],
        check: { kind: 'sha256-content', value: 'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888' },
      },
      {
        name: 'train-labels-idx1-ubyte.gz',
        urls: [FASHION + 'train-labels-idx1-ubyte.gz'],
        check: { kind: 'sha256-content', value: 'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9' },
      },
      {
        name: 't10k-images-idx3-ubyte.gz',
        urls: [FASHION + 't10k-images-idx3-ubyte.gz'],
        check: { kind: 'sha256-content', value: '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b' },
      },
      {
        name: 't10k-labels-idx1-ubyte.gz',
        urls: [FASHION + 't10k-labels-idx1-ubyte.gz'],
        check: { kind: 'sha256-content', value: '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34' },
      },
    ],
  },
  mnist: {
    name: 'mnist',
    folders: ['mnist', 'MNIST'],
    files: [
      {
        name: 'train-images-idx3-ubyte.gz',
        urls: MNIST.map((u) => u + 'train-images-idx3-ubyte.gz'),
        check: { kind: 'sha256-content', value: 'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db' },
      },
      {
        name: 'train-labels-idx1-ubyte.gz',
        urls: MNIST.map((u) => u + 'train-labels-idx1-ubyte.gz'),
        check: { kind: 'sha256-content', value: '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5' },
      },
      {
        name: 't10k-images-idx3-ubyte.gz',
        urls: MNIST.map((u) => u + 't10k-images-idx3-ubyte.gz'),
        check: { kind: 'sha256-content', value: '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7' },
      },
      {
        name: 't10k-labels-idx1-ubyte.gz',
        urls: MNIST.map((u) => u + 't10k-labels-idx1-ubyte.gz'),
        check: { kind: 'sha256-content', value: 'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2' },
      },
    ],
  },
  cifar10: {
    name: 'cifar10',
    folders: ['cifar10', 'cifar-10', 'cifar-10-batches-bin'],
    files: [
      {
        name: 'cifar-10-binary.tar.gz',
        urls: ['https://www.cs.toronto.edu/~kriz/cifar-10-binary.tar.gz'],
        check: { kind: 'md5', value: 'c32a1d4ab5d03f1284b67883e8d87530' },
      },
    ],
  },
};
