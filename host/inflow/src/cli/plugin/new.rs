//! `inflow plugin new`: writes a small plugin project in Rust, Python, JavaScript or C that
//! builds with the guest toolchains of `scripts/install/guest-toolchains.sh` and passes its own
//! `inflow plugin test --expect` as written. The templates are in `scaffold/`, compiled into
//! the binary with the WIT, the C bindings and the pinned lock files of the example plugins, so
//! a project is complete without an inflow checkout.

use anyhow::{bail, Context};
use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(clap::ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    Rust,
    Python,
    Js,
    C,
}

#[derive(clap::Args, Debug)]
pub struct PluginNewArgs {
    /// The plugin's language.
    #[arg(long, value_enum)]
    pub lang: Language,
    /// The plugin's name: the `.wasm` file's name and a rule's `plugin.name`; lowercase letters,
    /// digits and single `-`, starting with a letter, e.g. `by-tag`.
    pub name: String,
    /// The folder to write it into (default: `./NAME`); it must not exist, or be empty.
    pub dir: Option<PathBuf>,
}

/// What the README says per language.
struct Words {
    language: &'static str,
    source: &'static str,
    toolchain: &'static str,
    setup: &'static str,
}

/// One file of a project: its path in the project and its bytes, `{{name}}` and `{{crate}}`
/// filled in for text.
struct Template {
    path: &'static str,
    bytes: &'static [u8],
    executable: bool,
}

const fn text(path: &'static str, contents: &'static str) -> Template {
    Template { path, bytes: contents.as_bytes(), executable: false }
}

const fn script(path: &'static str, contents: &'static str) -> Template {
    Template { path, bytes: contents.as_bytes(), executable: true }
}

/// Every language's project has these.
const COMMON: &[Template] = &[
    text("README.md", include_str!("scaffold/README.md")),
    text("expected.json", include_str!("scaffold/expected.json")),
    text("samples/tagged.json", include_str!("scaffold/samples/tagged.json")),
    text("samples/untagged.json", include_str!("scaffold/samples/untagged.json")),
    text("wit/mapping.wit", include_str!("../../../../../wit/mapping/mapping.wit")),
];

const RUST: &[Template] = &[
    text("Cargo.toml", include_str!("scaffold/rust/Cargo.toml")),
    text("src/lib.rs", include_str!("scaffold/rust/lib.rs")),
    script("build.sh", include_str!("scaffold/rust/build.sh")),
    text(".gitignore", "/target/\n*.wasm\n"),
];

const PYTHON: &[Template] = &[
    text("app.py", include_str!("scaffold/python/app.py")),
    script("build.sh", include_str!("scaffold/python/build.sh")),
    text(".gitignore", "__pycache__/\n*.wasm\n"),
];

const JS: &[Template] = &[
    text("app.js", include_str!("scaffold/js/app.js")),
    script("build.sh", include_str!("scaffold/js/build.sh")),
    text(".gitignore", "/node_modules/\n*.wasm\n"),
];

const C: &[Template] = &[
    text("{{crate}}.c", include_str!("scaffold/c/plugin.c")),
    script("build.sh", include_str!("scaffold/c/build.sh")),
    text("bindings/mapping.h", include_str!("../../../../../plugins/c/bindings/mapping.h")),
    text("bindings/mapping.c", include_str!("../../../../../plugins/c/bindings/mapping.c")),
    Template {
        path: "bindings/mapping_component_type.o",
        bytes: include_bytes!("../../../../../plugins/c/bindings/mapping_component_type.o"),
        executable: false,
    },
    text(".gitignore", "*.wasm\n"),
];

/// The example plugins' lock files, so a new project builds with the same pinned versions.
const RUST_LOCK: &str = include_str!("../../../../../plugins/rust/Cargo.lock");
const JS_PACKAGE: &str = include_str!("../../../../../plugins/js/package.json");
const JS_LOCK: &str = include_str!("../../../../../plugins/js/package-lock.json");
/// The example's package name in those files.
const EXAMPLE_RUST_NAME: &str = "name = \"json-router\"";
const EXAMPLE_JS_NAME: &str = "\"name\": \"inflow-plugin-js\"";

impl Language {
    fn templates(self) -> &'static [Template] {
        match self {
            Language::Rust => RUST,
            Language::Python => PYTHON,
            Language::Js => JS,
            Language::C => C,
        }
    }

    fn words(self) -> Words {
        match self {
            Language::Rust => Words {
                language: "Rust",
                source: "src/lib.rs",
                toolchain: "cargo, target wasm32-wasip2",
                setup: "`rustup target add wasm32-wasip2` (cargo fetches wit-bindgen, pinned by Cargo.lock)",
            },
            Language::Python => Words {
                language: "Python",
                source: "app.py",
                toolchain: "componentize-py",
                setup: "`scripts/install/guest-toolchains.sh python` from an inflow checkout (componentize-py 0.25.1 in a venv under ~/.cache/inflow/guest), or `pip install componentize-py==0.25.1`",
            },
            Language::Js => Words {
                language: "JavaScript",
                source: "app.js",
                toolchain: "componentize-js",
                setup: "Node.js and npm; the first build runs `npm ci`, pinned by package-lock.json",
            },
            Language::C => Words {
                language: "C",
                source: "{{crate}}.c",
                toolchain: "clang + wasi-libc, wasm-tools",
                setup: "`scripts/install/guest-toolchains.sh c` from an inflow checkout: clang, lld, wasi-libc, wasm-tools and the WASI preview1 adapter; bindings/ is generated from wit/ and needs no generator",
            },
        }
    }
}

/// Why `name` cannot name a plugin project, if it cannot.
fn name_problem(name: &str) -> Option<&'static str> {
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_lowercase()) {
        return Some("it must start with a lowercase letter");
    }
    if name.len() > 64 {
        return Some("it is longer than 64 characters");
    }
    if !name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        return Some("it may hold only lowercase letters, digits and '-'");
    }
    if name.ends_with('-') || name.contains("--") {
        return Some("a '-' must stand between letters or digits");
    }
    None
}

/// The project's files: path and bytes, names filled in.
fn project(lang: Language, name: &str) -> Vec<(String, Cow<'static, [u8]>, bool)> {
    let crate_name = name.replace('-', "_");
    let words = lang.words();
    let fill = |text: &str| {
        // The language's words first: they may hold the names.
        text.replace("{{language}}", words.language)
            .replace("{{source}}", words.source)
            .replace("{{toolchain}}", words.toolchain)
            .replace("{{setup}}", words.setup)
            .replace("{{name}}", name)
            .replace("{{crate}}", &crate_name)
    };
    let mut files: Vec<(String, Cow<'static, [u8]>, bool)> = COMMON
        .iter()
        .chain(lang.templates())
        .map(|t| {
            let bytes = match std::str::from_utf8(t.bytes) {
                Ok(text) => Cow::Owned(fill(text).into_bytes()),
                Err(_) => Cow::Borrowed(t.bytes),
            };
            (fill(t.path), bytes, t.executable)
        })
        .collect();
    match lang {
        Language::Rust => {
            let lock = RUST_LOCK.replace(EXAMPLE_RUST_NAME, &format!("name = \"{name}\""));
            files.push(("Cargo.lock".into(), Cow::Owned(lock.into_bytes()), false));
        }
        Language::Js => {
            files.push(("package.json".into(), Cow::Owned(js_package(name).into_bytes()), false));
            let lock = JS_LOCK.replace(EXAMPLE_JS_NAME, &format!("\"name\": \"{name}\""));
            files.push(("package-lock.json".into(), Cow::Owned(lock.into_bytes()), false));
        }
        Language::Python | Language::C => {}
    }
    files
}

/// The example's package.json with this project's name and without its build script (build.sh
/// builds): the same pinned devDependencies as its lock file.
fn js_package(name: &str) -> String {
    let mut package: serde_json::Value = serde_json::from_str(JS_PACKAGE).expect("plugins/js/package.json is JSON");
    package["name"] = name.into();
    package["description"] = "An inflow mapping plugin (see README.md).".into();
    if let Some(fields) = package.as_object_mut() {
        fields.remove("scripts");
    }
    serde_json::to_string_pretty(&package).expect("JSON") + "\n"
}

/// Refuses a folder that is there and not empty (or not a folder).
fn check_target(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!("{} exists and is not empty; give a new or empty folder as DIR", dir.display());
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("{} cannot be used as the project folder", dir.display())),
    }
}

pub fn run(args: PluginNewArgs) -> anyhow::Result<()> {
    if let Some(problem) = name_problem(&args.name) {
        bail!("{:?} is not a plugin name: {problem}; e.g. \"by-tag\" (it names the .wasm file and a rule's plugin.name)", args.name);
    }
    let dir = args.dir.unwrap_or_else(|| PathBuf::from(&args.name));
    check_target(&dir)?;
    for (path, bytes, executable) in project(args.lang, &args.name) {
        let file = dir.join(&path);
        if let Some(parent) = file.parent() {
            std::fs::create_dir_all(parent).with_context(|| format!("cannot create {}", parent.display()))?;
        }
        std::fs::write(&file, &bytes).with_context(|| format!("cannot write {}", file.display()))?;
        if executable {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o755))
                .with_context(|| format!("cannot make {} executable", file.display()))?;
        }
    }
    println!(
        "wrote the {} plugin {} into {}; build and test it:\n  cd {} && ./build.sh\n  inflow plugin test {}.wasm --parent-topic plant --message samples/*.json --expect expected.json\n(README.md has the deploy and log commands)",
        args.lang.words().language,
        args.name,
        dir.display(),
        dir.display(),
        args.name
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plugin_names_are_checked() {
        for good in ["by-tag", "a", "router2", "a-1-b"] {
            assert_eq!(name_problem(good), None, "{good}");
        }
        for bad in ["", "By-tag", "2router", "by_tag", "by tag", "by-", "by--tag", "../x", &"a".repeat(65)] {
            assert!(name_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn every_project_is_complete_and_named() {
        for lang in [Language::Rust, Language::Python, Language::Js, Language::C] {
            let files = project(lang, "by-tag");
            let paths: Vec<&str> = files.iter().map(|(path, ..)| path.as_str()).collect();
            for needed in ["README.md", "build.sh", "expected.json", "samples/tagged.json", "wit/mapping.wit"] {
                assert!(paths.contains(&needed), "{lang:?}: {needed} in {paths:?}");
            }
            for (path, bytes, _) in &files {
                if let Ok(text) = std::str::from_utf8(bytes) {
                    assert!(!text.contains("{{"), "{lang:?} {path}: a placeholder left");
                }
            }
        }
        let rust = project(Language::Rust, "by-tag");
        let lock = rust.iter().find(|(path, ..)| path == "Cargo.lock").unwrap();
        assert!(std::str::from_utf8(&lock.1).unwrap().contains("name = \"by-tag\""), "the lock names the package");
        let js: serde_json::Value = serde_json::from_str(&js_package("by-tag")).unwrap();
        assert_eq!(js["name"], "by-tag");
        assert!(js["devDependencies"]["@bytecodealliance/componentize-js"].is_string());
        assert!(project(Language::C, "by-tag").iter().any(|(path, ..)| path == "by_tag.c"));
    }

    #[test]
    fn a_folder_with_files_is_refused() {
        let dir = std::env::temp_dir().join(format!("inflow-plugin-new-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        assert!(check_target(&dir).is_ok(), "an empty folder is fine");
        std::fs::write(dir.join("keep.txt"), "mine").unwrap();
        let err = check_target(&dir).err().unwrap().to_string();
        assert!(err.contains("exists and is not empty"), "{err}");
        assert!(check_target(&dir.join("new")).is_ok(), "a new folder is fine");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
