//! `Bundle`: the upload modules of a Worker (name, content type, bytes), as
//! rebuilt or as deployed.

use sha2::{Digest, Sha256};

/// sha256 of some bytes, lowercase hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// One upload module.
#[derive(Clone, PartialEq, Eq)]
pub struct Module {
    /// The module's name as uploaded, `/`-separated (`worker.js`, `lib/a.mjs`).
    pub name: String,
    /// `application/javascript+module`, `application/wasm`, …; `None` when
    /// the source did not say.
    pub content_type: Option<String>,
    pub bytes: Vec<u8>,
}

impl Module {
    pub fn new(name: impl Into<String>, content_type: Option<&str>, bytes: Vec<u8>) -> Self {
        Module {
            name: name.into(),
            content_type: content_type.map(str::to_owned),
            bytes,
        }
    }

    pub fn sha256(&self) -> String {
        sha256_hex(&self.bytes)
    }
}

impl std::fmt::Debug for Module {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Module")
            .field("name", &self.name)
            .field("content_type", &self.content_type)
            .field("size", &self.bytes.len())
            .finish()
    }
}

/// A Worker's modules and its entry module. Modules are kept sorted by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Bundle {
    pub main_module: Option<String>,
    modules: Vec<Module>,
}

impl Bundle {
    pub fn new(main_module: Option<String>, mut modules: Vec<Module>) -> Self {
        modules.sort_by(|a, b| a.name.cmp(&b.name));
        Bundle {
            main_module,
            modules,
        }
    }

    /// The modules, sorted by name.
    pub fn modules(&self) -> &[Module] {
        &self.modules
    }

    pub fn module(&self, name: &str) -> Option<&Module> {
        self.modules
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.modules[i])
    }

    pub fn module_mut(&mut self, name: &str) -> Option<&mut Module> {
        self.modules
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &mut self.modules[i])
    }

    /// Adds or replaces a module, keeping the order.
    pub fn insert(&mut self, module: Module) {
        match self
            .modules
            .binary_search_by(|m| m.name.as_str().cmp(&module.name))
        {
            Ok(i) => self.modules[i] = module,
            Err(i) => self.modules.insert(i, module),
        }
    }

    pub fn remove(&mut self, name: &str) -> Option<Module> {
        self.modules
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| self.modules.remove(i))
    }

    /// One digest over the whole bundle: sha256 of the sorted lines
    /// `"{sha256} {content_type or -} {name}\n"`, one per module, followed by
    /// `"main {main_module or -}\n"`. Equal iff every module, type and the
    /// entry point are equal.
    pub fn aggregate_sha256(&self) -> String {
        let mut manifest = String::new();
        for module in &self.modules {
            manifest.push_str(&format!(
                "{} {} {}\n",
                module.sha256(),
                module.content_type.as_deref().unwrap_or("-"),
                module.name
            ));
        }
        manifest.push_str(&format!(
            "main {}\n",
            self.main_module.as_deref().unwrap_or("-")
        ));
        sha256_hex(manifest.as_bytes())
    }

    pub fn total_size(&self) -> u64 {
        self.modules.iter().map(|m| m.bytes.len() as u64).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn modules_stay_sorted_and_the_aggregate_sees_every_field() {
        let mut b = Bundle::new(
            Some("b.js".into()),
            vec![
                Module::new("b.js", Some("application/javascript+module"), b"b".to_vec()),
                Module::new("a.js", Some("application/javascript+module"), b"a".to_vec()),
            ],
        );
        assert_eq!(b.modules()[0].name, "a.js");
        let before = b.aggregate_sha256();
        b.main_module = Some("a.js".into());
        assert_ne!(before, b.aggregate_sha256());
        b.main_module = Some("b.js".into());
        assert_eq!(before, b.aggregate_sha256());
        b.module_mut("a.js").unwrap().content_type = Some("text/plain".into());
        assert_ne!(before, b.aggregate_sha256());
        b.insert(Module::new("0.txt", None, vec![]));
        assert_eq!(b.modules()[0].name, "0.txt");
        assert!(b.remove("0.txt").is_some());
        assert!(b.module("0.txt").is_none());
    }
}
