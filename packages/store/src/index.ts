/**
 * @gbt/store: durable state on one machine. Where gbt keeps things (XDG base directories, or
 * `GBT_HOME`), SQLite opened the one way (WAL, busy timeout, foreign keys) and the one migration
 * routine every database of gbt uses (node, agent, audit log, gateway and its features' tables).
 */

export { API_KEY_NAME_PATTERN, checkApiKeyName, hashApiKey, type NewApiKey, newApiKey } from "./api-keys.js";
export { type Migrations, migrate, openDatabase, type SqliteDatabase } from "./database.js";
export { type JsonFileOptions, readJsonFile, writeJsonFile } from "./json-file.js";
export { type GbtPaths, resolvePaths } from "./paths.js";
