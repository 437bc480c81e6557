// Types of driver.mjs (`@messaging-mock/driver`).

export declare class Unsupported extends Error {
  constructor(message?: string);
}
export declare class NotImplemented extends Error {
  constructor(message?: string);
}
export declare class SchemaNotFound extends Error {}
export declare function notImplemented(reason?: string): never;

export interface DriverEnv {
  baseUrl?: string;
  wsUrl?: string;
  connectorToken?: string;
  host?: string;
  caseId?: string;
  /** MESSAGING_CA_FILE: the PEM CA of a TLS mock (`run --tls`); unset otherwise. */
  caFile?: string;
}
export interface Ctx {
  env: DriverEnv;
  log(text: unknown): void;
}

type Method<C> = (command: C, ctx: Ctx) => unknown | Promise<unknown>;
export interface Adapter {
  start?: Method<{ id: number; cmd: "start"; streaming: boolean }>;
  send?: Method<{ id: number; cmd: "send"; text: string }>;
  typing?: Method<{ id: number; cmd: "typing"; state: "started" | "stopped" }>;
  tapSuggestion?: Method<{ id: number; cmd: "tap_suggestion"; message_id: string; index: number }>;
  end?: Method<{ id: number; cmd: "end" }>;
  /** Returns the view (contract §4). */
  view?: Method<{ id: number; cmd: "view" }>;
  restart?: Method<{ id: number; cmd: "restart" }>;
  exit?: Method<{ id: number; cmd: "exit" }>;
  [method: string]: unknown;
}

export declare function runDriver(options: { name: string; version: string; adapter?: Adapter }): Promise<void>;
export declare function readEnv(source?: Record<string, string | undefined>): DriverEnv;
export declare function validate(value: unknown, schema: unknown): string[];
export declare function validateView(view: unknown, schema?: unknown): string[];
export declare function unknownKeywords(schema: unknown, found?: Set<string>): Set<string>;
export declare const SCHEMA_FILE: "driver-view.schema.json";
export declare function schemaCandidates(): string[];
export declare function defaultSchemaPath(): string;
export declare function loadViewSchema(path?: string): { path: string; schema: unknown; error?: string };
