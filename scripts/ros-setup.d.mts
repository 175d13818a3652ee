/** Types of scripts/ros-setup.mjs (`npm run ros:setup`), for its tests. */
export declare const REQUIRED_TYPES: readonly string[];
export declare const PACKAGE_FEATURES: Readonly<Record<string, string>>;
export declare const MIN_NODE: readonly number[];
export declare const KNOWN_DISTROS: readonly string[];

export interface SetupOptions {
  check: boolean;
  force: boolean;
  help: boolean;
  workspace: string | undefined;
}
export declare function parseSetupArgs(argv: string[]): SetupOptions | { error: string };
export declare function satisfiesRange(version: string, range: string): boolean;
export declare function environmentProblems(input: {
  env: NodeJS.ProcessEnv;
  nodeVersion: string;
  ros2: string | undefined;
  exists: (file: string) => boolean;
  root: string;
  dependencies: string[];
}): string[];
export declare function missingTypeAdvice(input: {
  missing: Record<string, string>;
  distro: string;
  root: string;
  prefixOf: (pkg: string) => string | undefined;
  log: string;
  workspace: string | undefined;
}): string[];
export declare function failureText(code: number, problems: string[]): string;
