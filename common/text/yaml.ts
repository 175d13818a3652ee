import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';

const require = createRequire(import.meta.url);
let yaml: typeof Yaml | undefined;

/**
 * YAML (and JSON) parsing with the `yaml` package loaded at the first call: most runs of either
 * program parse no YAML at all (no config file, no tokens file), and loading the parser costs
 * about a tenth of a second of start-up and a few MiB of heap that every full GC walks. Loaded
 * synchronously (the package's CommonJS build, the one an `import` resolves to in Node) so the
 * callers stay synchronous.
 */
export function parseYaml(text: string, options?: YamlOptions): unknown {
  yaml ??= require('yaml') as typeof Yaml;
  return yaml.parse(text, options) as unknown;
}

export type YamlOptions = Yaml.ParseOptions & Yaml.DocumentOptions & Yaml.SchemaOptions & Yaml.ToJSOptions;
