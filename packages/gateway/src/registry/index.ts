/** The gateway's model registry: signed manifests, approval status, the serving policy. */
export { ModelRegistryStore } from "./model-registry-store.js";
export { migrateModelRegistry, registryMigrations } from "./registry-database.js";
export { createModelRegistryExtension, type ModelRegistryExtensionOptions } from "./registry-extension.js";
