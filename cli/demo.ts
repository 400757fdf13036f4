/** `sslkit demo`: the in-browser retrieval page as a static site. */
import path from 'node:path';
import { Command } from 'commander';
import { writeDemoSite } from '../web-demo/site.js';

export function demoCommand(): Command {
  return new Command('demo')
    .description('write the in-browser retrieval demo as a static site (page + model + gallery) for any static host')
    .requiredOption('--model <file.onnx>', 'the ONNX encoder the gallery was indexed with')
    .requiredOption('--gallery <dir>', 'gallery from sslkit index --gallery')
    .requiredOption('--out <dir>', 'folder to write the site to')
    .action(async (f: { model: string; gallery: string; out: string }) => {
      await writeDemoSite(f.out, f.model, f.gallery, (l) => process.stderr.write(`${l}\n`));
      process.stdout.write(
        `wrote the demo to ${path.resolve(f.out)}: serve the folder with any static server and open index.html\n` +
          `(send 'Cross-Origin-Opener-Policy: same-origin' and 'Cross-Origin-Embedder-Policy: require-corp' for multi-threaded WebAssembly)\n`,
      );
    });
}
