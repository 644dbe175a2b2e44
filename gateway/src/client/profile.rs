//! Where the client finds its gateway and token: `--url` / `OAUTH3_URL`,
//! `OAUTH3_TOKEN`, else `<config dir>/oauth3/config.json` (what `oauth3
//! login` saved, mode 0600).

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// A saved sign-in.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Profile {
    /// The gateway's base URL.
    pub url: Option<String>,
    /// A bearer token. Never shown.
    pub token: Option<String>,
}

impl Profile {
    /// `$OAUTH3_CONFIG`, else `<config dir>/oauth3/config.json`.
    pub fn path() -> Result<PathBuf, String> {
        if let Some(path) = std::env::var_os("OAUTH3_CONFIG").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(path));
        }
        let dir = dirs::config_dir().ok_or("no config directory (set HOME, or OAUTH3_CONFIG)")?;
        Ok(dir.join("oauth3").join("config.json"))
    }

    /// The saved profile, or an empty one.
    pub fn load() -> Result<Profile, String> {
        let path = Profile::path()?;
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| format!("{}: {e}", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Profile::default()),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    /// Saves it, readable by the user alone (0600, written to a fresh file
    /// and renamed, so no moment exposes the token).
    pub fn save(&self) -> Result<PathBuf, String> {
        use std::io::Write;
        use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
        let path = Profile::path()?;
        let dir = path.parent().ok_or("the config path has no directory")?;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| format!("{}: {e}", dir.display()))?;
        let temporary = path.with_extension(format!("tmp{}", std::process::id()));
        let text = serde_json::to_vec_pretty(self).map_err(|e| e.to_string())?;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temporary)
            .map_err(|e| format!("{}: {e}", temporary.display()))?;
        file.write_all(&text).and_then(|()| file.sync_all()).map_err(|e| format!("{}: {e}", temporary.display()))?;
        std::fs::rename(&temporary, &path).map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(path)
    }
}
