/**
 * The README's TypeScript examples type-check against the API: each ```ts block is compiled as a
 * module of its own (strict, as the project), with `rxlake`, `rxlake/operators`, … resolved to
 * the sources. A block that continues an earlier one (it uses names it does not declare) is
 * preceded by an HTML comment `<!-- typecheck prelude: … -->` holding those declarations, which
 * a reader of the rendered README does not see.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

interface Block {
  /** 1-based line of the opening fence. */
  readonly line: number;
  readonly prelude: string;
  readonly code: string;
}

/** The ```ts blocks of a Markdown text, each with the prelude comment right before it. */
export function typescriptBlocks(markdown: string): Block[] {
  const blocks: Block[] = [];
  const fence = /^```ts\n([\s\S]*?)^```$/gm;
  for (let m = fence.exec(markdown); m !== null; m = fence.exec(markdown)) {
    const before = markdown.slice(0, m.index);
    const prelude = /<!-- typecheck prelude:\n((?:(?!-->)[\s\S])*)-->\n$/.exec(before)?.[1] ?? '';
    blocks.push({ line: before.split('\n').length, prelude, code: m[1] ?? '' });
  }
  return blocks;
}

/** Type errors of the blocks, as `README.md:<line of the block>: <message>`. */
function typeErrors(blocks: readonly Block[]): string[] {
  const config = ts.getParsedCommandLineOfConfigFile(join(root, 'tsconfig.json'), {}, { ...ts.sys, onUnRecoverableConfigFileDiagnostic: () => undefined });
  if (!config) throw new Error('tsconfig.json could not be read');
  const options: ts.CompilerOptions = {
    ...config.options,
    noEmit: true,
    declaration: false,
    paths: {
      rxlake: [join(root, 'src/index.ts')],
      'rxlake/*': [join(root, 'src/*/index.ts')],
    },
  };
  // Virtual files beside the project's own, so that rxjs, io-ts, pg resolve from its node_modules.
  const files = new Map(blocks.map((b) => [join(root, `README.block-${b.line}.mts`), `${b.prelude}\n${b.code}\nexport {};\n`]));
  const host = ts.createCompilerHost(options);
  const getSourceFile = host.getSourceFile.bind(host);
  const fileExists = host.fileExists.bind(host);
  const readFile = host.readFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => {
    const text = files.get(name);
    return text === undefined ? getSourceFile(name, language, ...rest) : ts.createSourceFile(name, text, language, true);
  };
  host.fileExists = (name) => files.has(name) || fileExists(name);
  host.readFile = (name) => files.get(name) ?? readFile(name);
  const program = ts.createProgram([...files.keys()], options, host);
  return ts
    .getPreEmitDiagnostics(program)
    .filter((d) => d.file !== undefined && files.has(d.file.fileName))
    .map((d) => {
      const block = /README\.block-(\d+)\.mts$/.exec(d.file?.fileName ?? '')?.[1];
      const { line } = d.file && d.start !== undefined ? d.file.getLineAndCharacterOfPosition(d.start) : { line: 0 };
      return `README.md:${block} (line ${line + 1} of prelude + block): ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
    });
}

describe('README', () => {
  const blocks = typescriptBlocks(readFileSync(join(root, 'README.md'), 'utf8'));

  it('has TypeScript examples, the "Compose your own pipeline" ones among them', () => {
    expect(blocks.length).toBeGreaterThanOrEqual(3);
    expect(blocks.some((b) => b.code.includes('batchInto(') && b.code.includes('fromKafka('))).toBe(true);
    expect(blocks.some((b) => b.code.includes('tumblingWindow(') && b.code.includes('sink:'))).toBe(true);
  });

  it('type-checks every TypeScript example against the API', { timeout: 120_000 }, () => {
    // Compiled with them, a block that must fail shows the check reports errors at all.
    const [control] = typescriptBlocks("```ts\nimport { batchInto } from 'rxlake/operators';\nbatchInto(42);\n```\n");
    const errors = typeErrors([...blocks, { ...(control as Block), line: 0 }]);
    expect(errors.filter((e) => !e.startsWith('README.md:0 '))).toEqual([]);
    expect(errors.filter((e) => e.startsWith('README.md:0 ')).length).toBeGreaterThan(0);
  });
});
