// The configuration's public face. settings.ts is the one table of settings (and the Config type
// inferred from it), load.ts reads the environment and CONFIG_FILE (file.ts) into a Config,
// effective.ts describes it for `gatehouse config check`.
export { describeEffectiveConfig, formatEffectiveConfig, type EffectiveSetting } from './effective.js';
export { RENAMED_FILE_KEYS } from './file.js';
export { ConfigError, loadConfig } from './load.js';
export { SETTING_ROWS, SUPPORTED_LANGUAGES, type Config, type DatabaseFlavour, type Language, type SettingRow, type SettingSource, type VariableName } from './settings.js';
