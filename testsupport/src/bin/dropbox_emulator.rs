//! The strict Dropbox API v2 emulator ([`edgemeet_testsupport::dropbox_emulator`]) as a process, for tests in other
//! languages (the browser tests): prints `dropbox emulator listening on http://127.0.0.1:PORT`.
//! Apps are registered with `POST /_emulator/apps {"app_key", "redirect_uris": [...]}`; committed
//! files are listed by `GET /_emulator/files`; `POST /_emulator/quota {"bytes": N}` makes the
//! Dropbox full past N bytes (`null`: no limit).

use edgemeet_testsupport::dropbox_emulator;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let emu = dropbox_emulator::Emulator::start().await;
    println!("dropbox emulator listening on {}", emu.url());
    std::future::pending::<()>().await;
}
