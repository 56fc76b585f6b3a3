//! `inflow check`: validate a config and the rules folder beside it, and load their plugins.

use crate::config::rule_files::read_rule_folder;
use crate::config::{self, plugin_file, PluginLookup};
use inflow_plugin::{Runtime, RuntimeConfig};
use std::path::PathBuf;

#[derive(clap::Args, Debug)]
pub struct CheckArgs {
    /// The config file (TOML).
    #[arg(short, long, value_name = "FILE")]
    pub config: PathBuf,
}

/// Validates the config and the rule files of its rules folder, then loads every plugin a rule
/// names and starts it with that rule's config (so its `init` judges the config too).
pub fn check(args: CheckArgs) -> i32 {
    let config = match config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}: {e}", args.config.display());
            return 1;
        }
    };
    let mut failures = 0;
    // The rules folder's files, checked as `inflow run` reads them (and against the file's rules).
    let folder = read_rule_folder(&config.rules_dir, &config.rules, &PluginLookup::on_disk(&config.plugins.dir));
    for (path, errors) in &folder.refused {
        failures += 1;
        eprintln!("{}: {errors}", path.display());
    }
    let mut config = config;
    let main_rules = config.rules.len();
    config.rules.extend(folder.rules);
    let plugin_rules: Vec<_> = config.rules.iter().filter(|r| r.plugin.is_some()).collect();
    if !plugin_rules.is_empty() {
        let runtime = match Runtime::new(RuntimeConfig::new(config.plugins.cache_dir.clone())) {
            Ok(r) => r,
            Err(e) => {
                eprintln!("plugin runtime cannot start: {e}");
                return 1;
            }
        };
        for rule in plugin_rules {
            let p = rule.plugin.as_ref().expect("filtered");
            let file = plugin_file(&config.plugins.dir, &p.name);
            let result = runtime
                .load(&file)
                .map_err(|e| e.to_string())
                .and_then(|plugin| plugin.instantiate(rule.plugin_context(), &p.config, rule.plugin_limits()).map(|_| ()).map_err(|e| e.to_string()));
            if let Err(e) = result {
                failures += 1;
                eprintln!("rule {:?}: plugin {} ({}): {e}", rule.id, p.name, file.display());
            }
        }
    }
    if failures > 0 {
        eprintln!("{failures} problem(s) in rule files and plugins");
        return 1;
    }
    let enabled = config.rules.iter().filter(|r| r.enabled).count();
    println!("{}: ok ({} rules, {} enabled, {} of them from {})", args.config.display(), config.rules.len(), enabled, config.rules.len() - main_rules, config.rules_dir.display());
    0
}
