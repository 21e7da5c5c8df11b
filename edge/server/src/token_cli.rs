//! `edgemeet token`: mint Jitsi-format invites, and `edgemeet token verify`: explain a refusal.

use std::path::PathBuf;

use anyhow::{Context, bail};
use base64::Engine;
use clap::{Args, Subcommand};
use edgemeet_protocol::invite::{Audience, Context as InviteContext, InviteClaims, User};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Map, Value};

use crate::config::ServerConfig;

#[derive(Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TokenArgs {
    #[command(subcommand)]
    command: Option<TokenCommand>,
    #[command(flatten)]
    mint: MintArgs,
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Check a token against a configuration and say why it would be refused.
    Verify(VerifyArgs),
}

/// Mint an invite. The signing secret or key comes from a file or the environment, never argv.
#[derive(Args)]
struct MintArgs {
    /// Tenant (`sub`).
    #[arg(long, default_value = "default")]
    tenant: String,
    /// Room name, or `*` for every room of the tenant.
    #[arg(long, default_value = "*")]
    room: String,
    #[arg(long)]
    moderator: bool,
    /// Feature flags to grant (repeatable), e.g. `recording`.
    #[arg(long = "feature")]
    features: Vec<String>,
    #[arg(long)]
    name: Option<String>,
    #[arg(long)]
    email: Option<String>,
    #[arg(long)]
    avatar: Option<String>,
    #[arg(long)]
    user_id: Option<String>,
    /// Issuer (`iss`): one of the tenant's `issuers`.
    #[arg(long, default_value = "edgemeet-cli")]
    issuer: String,
    #[arg(long, default_value = "edgemeet")]
    audience: String,
    /// Lifetime in seconds.
    #[arg(long, default_value_t = 3600)]
    expires_in: u64,
    /// HS256: a file holding the tenant's shared secret (or set EDGEMEET_HS256_SECRET).
    #[arg(long, conflicts_with = "rs256_key")]
    hs256_secret_file: Option<PathBuf>,
    /// RS256: a PEM private key file.
    #[arg(long)]
    rs256_key: Option<PathBuf>,
    /// RS256 key id (`kid`), as configured in the tenant's `rs256_public_keys`.
    #[arg(long, requires = "rs256_key")]
    kid: Option<String>,
}

#[derive(Args)]
struct VerifyArgs {
    token: String,
    /// The edge configuration holding the tenant's keys.
    #[arg(long, short)]
    config: PathBuf,
    #[arg(long, default_value = "default")]
    tenant: String,
    /// The room to check against (defaults to the token's own `room` claim).
    #[arg(long)]
    room: Option<String>,
}

fn now_s() -> u64 {
    crate::hub::now_ms() / 1000
}

pub fn run(args: TokenArgs) -> anyhow::Result<()> {
    match args.command {
        Some(TokenCommand::Verify(v)) => verify(v),
        None => {
            println!("{}", mint(args.mint)?);
            Ok(())
        }
    }
}

fn mint(a: MintArgs) -> anyhow::Result<String> {
    let mut features = Map::new();
    for f in a.features {
        features.insert(f, Value::Bool(true));
    }
    let now = now_s();
    let claims = InviteClaims {
        iss: a.issuer,
        aud: Audience::One(a.audience),
        sub: a.tenant,
        room: a.room,
        exp: now + a.expires_in,
        nbf: Some(now.saturating_sub(10)),
        iat: Some(now),
        context: InviteContext {
            user: User {
                id: a.user_id,
                name: a.name,
                email: a.email,
                avatar: a.avatar,
                moderator: Some(Value::Bool(a.moderator)),
            },
            features,
        },
    };
    if let Some(path) = a.rs256_key {
        let pem =
            std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
        let key = EncodingKey::from_rsa_pem(&pem)
            .with_context(|| format!("{} is not a PEM RSA private key", path.display()))?;
        let mut header = Header::new(Algorithm::RS256);
        header.kid = a.kid;
        return Ok(jsonwebtoken::encode(&header, &claims, &key)?);
    }
    let secret = match a.hs256_secret_file {
        Some(path) => std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_string(),
        None => std::env::var("EDGEMEET_HS256_SECRET")
            .context("give --hs256-secret-file, --rs256-key, or set EDGEMEET_HS256_SECRET")?,
    };
    if secret.len() < 32 {
        bail!("the HS256 secret must be at least 32 bytes (the edge refuses shorter ones)");
    }
    Ok(jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )?)
}

fn verify(v: VerifyArgs) -> anyhow::Result<()> {
    let config = ServerConfig::load(Some(&v.config))?;
    let tenant = config
        .edge
        .tenant(&v.tenant)
        .with_context(|| format!("tenant `{}` is not in {}", v.tenant, v.config.display()))?;
    let unverified = peek_claims(&v.token);
    if let Some(claims) = &unverified {
        println!("claims (unverified): {claims}");
    }
    let room = v
        .room
        .or_else(|| {
            unverified
                .as_ref()
                .and_then(|c| c["room"].as_str().map(str::to_string))
        })
        .filter(|r| r != "*")
        .unwrap_or_else(|| "any-room".into());
    let room = edgemeet_core::address::normalize_room(&room)
        .map_err(|e| anyhow::anyhow!("--room: {}", e.message))?;
    let now = now_s();
    match edgemeet_core::auth::verify_invite(&v.tenant, tenant, &room, &v.token, now) {
        Ok(id) => {
            println!(
                "valid for tenant `{}`, room `{room}`: moderator={}, features={:?}",
                v.tenant, id.moderator, id.features
            );
            Ok(())
        }
        Err(err) => {
            let code = serde_json::to_value(err.code)
                .ok()
                .and_then(|c| c.as_str().map(str::to_string))
                .unwrap_or_default();
            let mut detail = String::new();
            if let Some(c) = &unverified {
                let t = |k: &str| c[k].as_u64();
                match code.as_str() {
                    "token_expired" => {
                        detail = format!(
                            " (exp was {} s ago)",
                            now.saturating_sub(t("exp").unwrap_or(0))
                        )
                    }
                    "token_not_yet_valid" => {
                        detail = format!(
                            " (nbf is {} s ahead)",
                            t("nbf").unwrap_or(0).saturating_sub(now)
                        )
                    }
                    "token_wrong_issuer" => {
                        detail = format!(" (iss {} not in {:?})", c["iss"], tenant.issuers)
                    }
                    "token_wrong_audience" => {
                        detail = format!(" (aud {} is not {:?})", c["aud"], tenant.audience)
                    }
                    "token_wrong_tenant" => {
                        detail = format!(" (sub {} is not {:?})", c["sub"], v.tenant)
                    }
                    "token_wrong_room" => {
                        detail = format!(" (room {} is not {room:?} or \"*\")", c["room"])
                    }
                    _ => {}
                }
            }
            bail!("refused: {code}: {}{detail}", err.message)
        }
    }
}

/// The payload of a JWT, decoded without checking anything: for explanations only.
fn peek_claims(token: &str) -> Option<Value> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    serde_json::from_slice(&bytes).ok()
}
