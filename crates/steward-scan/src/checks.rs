//! Checks that tell a real secret from a look-alike: Shannon entropy, placeholders and
//! documentation values, and provider checksums. Pure functions over the candidate.

/// Shannon entropy of `text` in bits per byte.
pub fn shannon_entropy(text: &[u8]) -> f64 {
    if text.is_empty() {
        return 0.0;
    }
    let mut counts = [0u32; 256];
    for byte in text {
        counts[*byte as usize] += 1;
    }
    let length = text.len() as f64;
    counts
        .iter()
        .filter(|count| **count > 0)
        .map(|count| {
            let probability = f64::from(*count) / length;
            -probability * probability.log2()
        })
        .sum()
}

/// Whether `secret` is a placeholder or documentation value rather than a secret:
/// AWS's documented example keys, `EXAMPLE`/`example`/`dummy`/`sample` markers, runs of one
/// character (`xxxx…`, `0000…`), counting sequences (`123456…`, `abcdef…`), templates
/// (`${VAR}`, `{{ var }}`, `<token>`, `%(name)s`), and tokens of a checksummed format whose
/// checksum does not verify (see [`is_broken_checksummed_token`]).
pub fn is_placeholder(secret: &[u8]) -> bool {
    if is_broken_checksummed_token(secret) {
        return true;
    }
    // jwt.io's example token (`{"sub":"1234567890","name":"John Doe","iat":1516239022}`),
    // the JWT of documentation, signed with whatever key a tutorial picked.
    const JWT_IO_EXAMPLE_PAYLOAD: &[u8] =
        b".eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.";
    if memchr::memmem::find(secret, JWT_IO_EXAMPLE_PAYLOAD).is_some() {
        return true;
    }
    let text = String::from_utf8_lossy(secret);
    let lower = text.to_ascii_lowercase();
    const MARKERS: &[&str] = &[
        "example",
        "dummy",
        "sample",
        "placeholder",
        "changeme",
        "change_me",
        "your_",
        "your-",
        "yourtoken",
        "redacted",
        "xxxxxx",
        "******",
        "000000",
        "111111",
        "123456",
        "abcdef",
        "fake",
        "insert",
    ];
    if MARKERS.iter().any(|marker| lower.contains(marker)) {
        return true;
    }
    // Whole values that documentation and tutorials use in place of a real password.
    const DUMMY_VALUES: &[&str] = &[
        "password",
        "passwd",
        "pass",
        "secret",
        "admin",
        "root",
        "test",
        "user",
        "guest",
        "postgres",
        "mysql",
        "redis",
        "rabbitmq",
        "letmein",
        "qwerty",
        "password1",
        "password123",
        "mypassword",
        "secretpassword",
    ];
    if DUMMY_VALUES.contains(&lower.as_str()) {
        return true;
    }
    if text.contains("${") || text.contains("{{") || text.contains("}}") || text.contains("%(") {
        return true;
    }
    if (text.starts_with('<') && text.ends_with('>')) || (text.starts_with('$') && text.len() > 1) {
        return true;
    }
    let bytes = secret;
    if bytes.len() >= 6 && bytes.iter().all(|byte| *byte == bytes[0]) {
        return true;
    }
    false
}

/// Whether `secret` reads like a name rather than a secret: letters and separators only,
/// no digit and no other symbol (`personal_access_token`, `PersonalAccessToken`,
/// `read-only`). Generic rules, which match on context alone, reject these.
pub fn looks_like_identifier(secret: &[u8]) -> bool {
    secret
        .iter()
        .all(|byte| byte.is_ascii_alphabetic() || matches!(byte, b'_' | b'-' | b'.' | b'/'))
}

/// Prefixes of the token formats that end in a CRC32/base62 checksum: GitHub's classic,
/// OAuth, app and refresh tokens, and npm's access tokens, which adopted GitHub's format.
const CHECKSUMMED_PREFIXES: &[&[u8]] = &[b"ghp_", b"gho_", b"ghu_", b"ghs_", b"ghr_", b"npm_"];

/// Whether `secret` starts like a checksummed token (`ghp_…`, `npm_…`) but is not one: wrong
/// length or a checksum that does not verify. Such values are mistyped, truncated or made-up
/// tokens; checking here keeps generic rules from reporting what the provider's own rule
/// rejects.
pub fn is_broken_checksummed_token(secret: &[u8]) -> bool {
    if !CHECKSUMMED_PREFIXES.iter().any(|prefix| secret.starts_with(prefix)) {
        return false;
    }
    let well_formed = secret.len() == 40 && secret[4..].iter().all(u8::is_ascii_alphanumeric);
    !(well_formed && github_checksum_is_valid(secret))
}

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn base62_value(byte: u8) -> Option<u64> {
    BASE62
        .iter()
        .position(|candidate| *candidate == byte)
        .map(|index| index as u64)
}

/// GitHub's token checksum: the last six base62 characters encode the CRC32 of the
/// random part between the `xxx_` prefix and the checksum (classic/OAuth/app tokens), or of
/// everything after the prefix for fine-grained tokens, per GitHub's token-format
/// announcement.
pub fn github_checksum_is_valid(token: &[u8]) -> bool {
    let Some(separator) = token.iter().position(|byte| *byte == b'_') else {
        return false;
    };
    if token.len() < separator + 1 + 6 + 1 {
        return false;
    }
    let body = &token[separator + 1..token.len() - 6];
    let checksum = &token[token.len() - 6..];
    let mut value: u64 = 0;
    for byte in checksum {
        match base62_value(*byte) {
            Some(digit) => value = value * 62 + digit,
            None => return false,
        }
    }
    value == u64::from(crc32fast::hash(body))
}

/// Encodes a CRC32 as six base62 digits (for building test tokens).
pub fn base62_checksum(body: &[u8]) -> String {
    let mut value = u64::from(crc32fast::hash(body));
    let mut digits = [b'0'; 6];
    for slot in digits.iter_mut().rev() {
        *slot = BASE62[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(digits.to_vec()).expect("base62 is ASCII")
}

/// A named validator a rule can require.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validator {
    /// GitHub's CRC32/base62 token checksum.
    GithubChecksum,
}

impl Validator {
    /// Looks a validator up by its name in rule files.
    pub fn from_name(name: &str) -> Option<Validator> {
        match name {
            "github-checksum" => Some(Validator::GithubChecksum),
            _ => None,
        }
    }

    /// Whether `secret` passes.
    pub fn accepts(self, secret: &[u8]) -> bool {
        match self {
            Validator::GithubChecksum => github_checksum_is_valid(secret),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entropy_ranks_random_above_repetitive() {
        assert!(shannon_entropy(b"aaaaaaaa") < 0.01);
        assert!(shannon_entropy(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCY") > 4.0);
    }

    #[test]
    fn placeholders_are_recognised() {
        for text in [
            "AKIAIOSFODNN7EXAMPLE",
            "xxxxxxxxxxxxxxxx",
            "${GITHUB_TOKEN}",
            "{{ api_key }}",
            "<your-token>",
            "sk_live_123456789012345678901234",
        ] {
            assert!(is_placeholder(text.as_bytes()), "{text}");
        }
        assert!(!is_placeholder(b"wJalrXUtnFEMI/K7MDENG/bPxRfiCYzS3cr3tV4l"));
    }

    #[test]
    fn github_checksum_matches_a_published_example() {
        // The example token in a public write-up of GitHub's format (not a live token).
        assert!(github_checksum_is_valid(b"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"));
    }

    #[test]
    fn checksummed_tokens_that_do_not_verify_are_placeholders() {
        let body = "zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ";
        let token = format!("npm_{body}{}", base62_checksum(body.as_bytes()));
        assert!(!is_placeholder(token.as_bytes()));
        let mut broken = token.clone().into_bytes();
        broken[8] = if broken[8] == b'A' { b'B' } else { b'A' };
        assert!(is_placeholder(&broken));
        assert!(is_placeholder(&token.as_bytes()[..20]));
        assert!(!is_broken_checksummed_token(
            b"ghx_zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ0mLq17"
        ));
    }

    #[test]
    fn github_checksums_round_trip() {
        let body = "zQWBuTSOoRi4A9spHcVY5ncnsDkxkJ";
        let token = format!("ghp_{body}{}", base62_checksum(body.as_bytes()));
        assert!(github_checksum_is_valid(token.as_bytes()));
        let mut broken = token.clone().into_bytes();
        broken[10] = if broken[10] == b'A' { b'B' } else { b'A' };
        assert!(!github_checksum_is_valid(&broken));
    }
}
