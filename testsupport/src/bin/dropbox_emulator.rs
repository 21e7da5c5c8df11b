//! The strict Dropbox API v2 emulator ([`edgemeet_testsupport::dropbox_emulator`]) as a process, for tests in other
//! languages (the browser tests): prints `dropbox emulator listening on http://127.0.0.1:PORT`.
//! Apps are registered with `POST /_emulator/apps {"app_key", "redirect_uris": [...]}`; committed
//! files are listed by `GET /_emulator/files`; `POST /_emulator/quota {"bytes": N}` makes the
//! Dropbox full past N bytes (`null`: no limit). With `EDGEMEET_EMULATOR_KEEP_DIR` set, the bytes of
//! each file committed from an upload session are also written there (`/` in its path as `_`).

use edgemeet_testsupport::dropbox_emulator;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let emu = dropbox_emulator::Emulator::start().await;
    if let Some(dir) = std::env::var_os("EDGEMEET_EMULATOR_KEEP_DIR").filter(|d| !d.is_empty()) {
        emu.keep_files_in(dir);
    }
    println!("dropbox emulator listening on {}", emu.url());
    std::future::pending::<()>().await;
}
