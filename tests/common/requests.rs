//! A team of homes around one repository for the key-request tests (issue #15):
//! each person runs warrant in their own home with only their own keys.

use serde_json::Value;

use super::registry::RegistryFixture;
use super::{Run, World, make_image};

pub struct Team {
    pub w: World,
    pub repo: String,
}

impl Team {
    /// An initialized repository on an OCI layout with `v1`.
    pub fn on_layout() -> Self {
        let w = World::new();
        make_image(&w.layout(), "v1", "v1");
        let t = Team { repo: w.oci(""), w };
        t.ok("admin", &["init", &t.repo]);
        t
    }
    /// An initialized repository `team/app` on `reg` with the images `tags`.
    pub fn on_registry(reg: &RegistryFixture, tags: &[&str]) -> Self {
        let w = World::new();
        for tag in tags {
            make_image(&w.layout(), tag, tag);
            reg.push(&w.layout(), tag, "team/app");
        }
        let t = Team {
            repo: reg.repo("team/app", ""),
            w,
        };
        t.ok("admin", &["init", &t.repo]);
        t
    }
    pub fn run(&self, home: &str, args: &[&str]) -> Run {
        self.w.run(self.w.cmd(home, args))
    }
    pub fn ok(&self, home: &str, args: &[&str]) -> Run {
        let r = self.run(home, args);
        assert_eq!(r.code, 0, "{home} {args:?}: {}", r.text());
        r
    }
    pub fn json(&self, home: &str, args: &[&str]) -> Value {
        let mut all = vec!["--output", "json"];
        all.extend_from_slice(args);
        serde_json::from_str(&self.ok(home, &all).stdout).unwrap()
    }
    /// `home` asks for `role` with its key `key` (generated on first use); the
    /// request as printed.
    pub fn request(&self, home: &str, key: &str, role: &str, note: &str) -> Value {
        if self
            .run(home, &["key", "list"])
            .stdout
            .lines()
            .all(|l| !l.contains(key))
        {
            self.ok(home, &["key", "generate", "--name", key]);
        }
        self.json(
            home,
            &[
                "key", "request", &self.repo, "--role", role, "--key", key, "--note", note,
            ],
        )
    }
    pub fn open_requests(&self) -> Vec<Value> {
        let v = self.json("admin", &["key", "requests", &self.repo]);
        v.as_array().unwrap().clone()
    }
}

pub fn s(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}
