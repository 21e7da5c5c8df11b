# Rust components the tests use (rustfmt and clippy ship with the toolchain; check anyway).
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt
