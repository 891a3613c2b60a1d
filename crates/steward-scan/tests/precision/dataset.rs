//! The precision evaluation set: realistic snippets holding one secret each (positives)
//! and snippets holding look-alikes that are not secrets (negatives), generated at test
//! time from a seeded RNG so the repository never contains token-shaped strings.
//!
//! The tokens follow each provider's published format, not the scanner's rules, so the set
//! measures the rules rather than restating them. Each positive names its provider family
//! and the secret that must be found; each negative names the kind of look-alike it is.
//! Nothing here depends on the scanner: it only produces text.

/// One snippet of the set.
pub struct Sample {
    /// Provider family (positives) or look-alike category (negatives).
    pub group: &'static str,
    /// What the snippet imitates (`.env`, `yaml`, `python`, …), for reports.
    pub context: &'static str,
    /// The text to scan.
    pub text: String,
    /// For positives, the secret a finding must cover.
    pub secret: Option<String>,
}

/// A small deterministic generator (SplitMix64), so the set is the same on every run.
pub struct Rng(u64);

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const DIGITS: &str = "0123456789";
const HEX: &str = "0123456789abcdef";
const BASE32: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const BASE62: &str = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const BASE64: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const BASE64URL: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `low..=high`.
    pub fn range(&mut self, low: usize, high: usize) -> usize {
        low + (self.next() % (high - low + 1) as u64) as usize
    }

    /// One element of `items`.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.range(0, items.len() - 1)]
    }

    /// `length` characters drawn from `alphabet`.
    pub fn chars(&mut self, alphabet: &str, length: usize) -> String {
        let alphabet = alphabet.as_bytes();
        (0..length)
            .map(|_| alphabet[self.range(0, alphabet.len() - 1)] as char)
            .collect()
    }

    fn alnum(&mut self, length: usize) -> String {
        self.chars(BASE62, length)
    }

    fn hex(&mut self, length: usize) -> String {
        self.chars(HEX, length)
    }

    fn digits(&mut self, length: usize) -> String {
        let first = self.chars("123456789", 1);
        first + &self.chars(DIGITS, length - 1)
    }

    fn bytes(&mut self, length: usize) -> Vec<u8> {
        (0..length).map(|_| self.next() as u8).collect()
    }

    fn uuid(&mut self) -> String {
        format!(
            "{}-{}-4{}-{}{}-{}",
            self.hex(8),
            self.hex(4),
            self.hex(3),
            self.pick(&["8", "9", "a", "b"]),
            self.hex(3),
            self.hex(12)
        )
    }
}

/// Standard base64 (with padding) of `data`.
pub fn base64(data: &[u8]) -> String {
    encode64(data, BASE64.as_bytes(), true)
}

fn base64url(data: &[u8]) -> String {
    encode64(data, BASE64URL.as_bytes(), false)
}

fn encode64(data: &[u8], alphabet: &[u8], pad: bool) -> String {
    let mut out = String::new();
    for chunk in data.chunks(3) {
        let value = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for index in 0..4 {
            if index <= chunk.len() {
                out.push(alphabet[((value >> (18 - 6 * index)) & 63) as usize] as char);
            } else if pad {
                out.push('=');
            }
        }
    }
    out
}

/// GitHub's checksum: six base62 digits of the CRC32 of the token body.
fn github_checksum(body: &str) -> String {
    let mut value = u64::from(crc32(body.as_bytes()));
    let digits = BASE62.as_bytes();
    let mut out = [b'0'; 6];
    for slot in out.iter_mut().rev() {
        *slot = digits[(value % 62) as usize];
        value /= 62;
    }
    String::from_utf8(out.to_vec()).expect("ASCII")
}

/// CRC-32 (IEEE), written out so the set does not borrow the scanner's implementation.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for byte in data {
        crc ^= u32::from(*byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A GitHub token of `prefix` with a valid checksum.
pub fn github_token(rng: &mut Rng, prefix: &str) -> String {
    let body = rng.alnum(30);
    format!("{prefix}{body}{}", github_checksum(&body))
}

/// Names under which a secret is stored: `UPPER_SNAKE`, and a human label.
struct Names<'a> {
    env: &'a str,
    label: &'a str,
}

fn lower_snake(env: &str) -> String {
    env.to_ascii_lowercase()
}

fn camel(env: &str) -> String {
    let mut out = String::new();
    for (index, part) in env.split('_').enumerate() {
        let part = part.to_ascii_lowercase();
        if index == 0 {
            out.push_str(&part);
        } else {
            let mut chars = part.chars();
            if let Some(first) = chars.next() {
                out.push(first.to_ascii_uppercase());
                out.push_str(chars.as_str());
            }
        }
    }
    out
}

fn pascal(env: &str) -> String {
    let camel = camel(env);
    let mut chars = camel.chars();
    match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => camel,
    }
}

/// The places a secret stored under a name is commonly written. Each returns the context
/// name and the text.
fn assignment(rng: &mut Rng, names: &Names, secret: &str) -> (&'static str, String) {
    let env = names.env;
    let snake = lower_snake(env);
    let camel = camel(env);
    let pascal = pascal(env);
    let label = names.label;
    let choice = rng.range(0, 27);
    match choice {
        0 => (".env", format!("# {label}\n{env}={secret}\nLOG_LEVEL=info\n")),
        1 => (".env", format!("APP_ENV=production\n{env}=\"{secret}\"\n")),
        2 => (
            "shell",
            format!("#!/usr/bin/env bash\nset -euo pipefail\nexport {env}='{secret}'\n./bin/deploy --env prod\n"),
        ),
        3 => (
            "yaml",
            format!("service:\n  name: billing\n  {snake}: {secret}\n  timeout: 30s\n"),
        ),
        4 => (
            "yaml",
            format!("credentials:\n  {snake}: \"{secret}\"\n  region: eu-west-1\n"),
        ),
        5 => (
            "json",
            format!("{{\n  \"name\": \"billing-worker\",\n  \"{camel}\": \"{secret}\",\n  \"retries\": 3\n}}\n"),
        ),
        6 => (
            "python",
            format!(
                "import os\n\n{env} = os.environ.get(\"{env}\", \"{secret}\")\n\ndef client():\n    return Client({env})\n"
            ),
        ),
        7 => (
            "python",
            format!("settings = {{\n    \"{snake}\": \"{secret}\",\n    \"debug\": False,\n}}\n"),
        ),
        8 => (
            "javascript",
            format!("const {camel} = \"{secret}\";\nmodule.exports = {{ {camel} }};\n"),
        ),
        9 => (
            "javascript",
            format!("const client = new Client({{ {camel}: '{secret}', timeout: 5000, retries: 3 }});\n"),
        ),
        10 => ("go", format!("package config\n\nconst {pascal} = \"{secret}\"\n")),
        11 => (
            "go",
            format!("\tcfg := Config{{Region: \"us-east-1\", {pascal}: \"{secret}\"}}\n"),
        ),
        12 => (
            "java",
            format!("public final class Settings {{\n    private static final String {env} = \"{secret}\";\n}}\n"),
        ),
        13 => (
            "dockerfile",
            format!("FROM python:3.12-slim\nENV {env}={secret}\nRUN pip install -r requirements.txt\n"),
        ),
        14 => (
            "github-actions",
            format!(
                "jobs:\n  deploy:\n    runs-on: ubuntu-latest\n    env:\n      {env}: {secret}\n    steps:\n      - run: make deploy\n"
            ),
        ),
        15 => (
            "terraform",
            format!(
                "variable \"{snake}\" {{\n  type      = string\n  default   = \"{secret}\"\n  sensitive = true\n}}\n"
            ),
        ),
        16 => (
            "kubernetes",
            format!(
                "apiVersion: v1\nkind: Secret\nmetadata:\n  name: app-secrets\ntype: Opaque\nstringData:\n  {env}: \"{secret}\"\n"
            ),
        ),
        17 => (
            "docker-compose",
            format!(
                "services:\n  api:\n    image: acme/api:1.4\n    environment:\n      - {env}={secret}\n      - PORT=8080\n"
            ),
        ),
        18 => (
            "properties",
            format!("app.name=billing\napp.{}={secret}\n", snake.replace('_', ".")),
        ),
        19 => ("ini", format!("[default]\n{snake} = {secret}\nregion = us-east-1\n")),
        20 => ("toml", format!("[auth]\n{snake} = \"{secret}\"\n")),
        21 => ("powershell", format!("$env:{env} = \"{secret}\"\n& .\\deploy.ps1\n")),
        22 => (
            "csharp",
            format!("var settings = new Settings {{ {pascal} = \"{secret}\" }};\n"),
        ),
        23 => ("rust", format!("let {snake} = \"{secret}\";\n")),
        24 => (
            "ruby",
            format!("Acme.configure do |config|\n  config.{snake} = '{secret}'\nend\n"),
        ),
        25 => ("php", format!("<?php\ndefine('{env}', '{secret}');\n")),
        26 => (
            "log",
            format!("2024-03-11T09:14:22.118Z INFO  loaded config {snake}={secret} region=us-east-1\n"),
        ),
        _ => (
            "chat",
            format!("@dana the {label} for staging is {secret} — rotate it after the demo pls\n"),
        ),
    }
}

/// Contexts where a bearer-style token is used rather than stored.
fn usage(rng: &mut Rng, names: &Names, secret: &str, host: &str) -> (&'static str, String) {
    let env = names.env;
    let label = names.label;
    match rng.range(0, 5) {
        0 => (
            "markdown",
            format!("## Calling the API\n\nWith the {label}:\n\n```sh\n{env}={secret} ./scripts/sync.sh\n```\n"),
        ),
        1 => (
            "shell",
            format!("curl -sS -H \"Authorization: Bearer {secret}\" https://{host}/v1/me | jq .\n"),
        ),
        2 => (
            "log",
            format!(
                "2024-05-02 10:01:07,331 DEBUG urllib3 request headers={{'Authorization': 'Bearer {secret}', 'Accept': 'application/json'}}\n"
            ),
        ),
        3 => (
            "cli",
            format!("$ acmectl login --token {secret} --host https://{host}\nLogged in.\n"),
        ),
        4 => (
            "chat",
            format!("[10:42] sam: try this token {secret}\n[10:43] kim: works, thx\n"),
        ),
        _ => (
            "http",
            format!("GET /v1/projects HTTP/1.1\nHost: {host}\nAuthorization: Bearer {secret}\n"),
        ),
    }
}

/// A stored-or-used context, half of each, for self-identifying (prefixed) tokens.
fn anywhere(rng: &mut Rng, names: &Names, secret: &str, host: &str) -> (&'static str, String) {
    if rng.range(0, 2) == 0 {
        usage(rng, names, secret, host)
    } else {
        assignment(rng, names, secret)
    }
}

struct Builder {
    rng: Rng,
    samples: Vec<Sample>,
}

impl Builder {
    fn push(&mut self, group: &'static str, (context, text): (&'static str, String), secret: Option<String>) {
        self.samples.push(Sample {
            group,
            context,
            text,
            secret,
        });
    }

    /// `count` positives of a prefixed token made by `make`, stored or used anywhere.
    fn prefixed(
        &mut self,
        group: &'static str,
        count: usize,
        names: &Names,
        host: &str,
        make: impl Fn(&mut Rng) -> String,
    ) {
        for _ in 0..count {
            let secret = make(&mut self.rng);
            let placed = anywhere(&mut self.rng, names, &secret, host);
            self.push(group, placed, Some(secret));
        }
    }

    /// `count` positives of a token made by `make`, only in assignments to `names`.
    fn assigned(&mut self, group: &'static str, count: usize, names: &Names, make: impl Fn(&mut Rng) -> String) {
        for _ in 0..count {
            let secret = make(&mut self.rng);
            self.push_assigned(group, names, secret);
        }
    }

    /// One positive: `secret` assigned to one of `names`.
    fn push_assigned(&mut self, group: &'static str, names: &Names, secret: String) {
        let placed = assignment(&mut self.rng, names, &secret);
        self.push(group, placed, Some(secret));
    }

    /// Positives written in a provider-specific template (`{s}` is the secret).
    fn templated(&mut self, group: &'static str, context: &'static str, template: &str, secret: String) {
        let text = template.replace("{s}", &secret);
        self.push(group, (context, text), Some(secret));
    }

    /// A negative.
    fn negative(&mut self, group: &'static str, context: &'static str, text: String) {
        self.push(group, (context, text), None);
    }
}

fn pem_body(rng: &mut Rng, der_prefix: &[u8], length: usize) -> String {
    let mut der = der_prefix.to_vec();
    der.extend(rng.bytes(length));
    let encoded = base64(&der);
    encoded
        .as_bytes()
        .chunks(64)
        .map(|line| String::from_utf8(line.to_vec()).expect("ASCII"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn pem(rng: &mut Rng, label: &str, der_prefix: &[u8], length: usize) -> String {
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----",
        pem_body(rng, der_prefix, length)
    )
}

fn jwt(rng: &mut Rng) -> String {
    let algorithm = *rng.pick(&["HS256", "RS256", "ES256"]);
    let header = base64url(format!("{{\"alg\":\"{algorithm}\",\"typ\":\"JWT\"}}").as_bytes());
    let payload = format!(
        "{{\"sub\":\"{}\",\"name\":\"svc-{}\",\"iat\":{},\"exp\":{},\"scope\":\"read write\"}}",
        rng.uuid(),
        rng.chars(LOWER, 6),
        1_700_000_000 + rng.range(0, 30_000_000),
        1_740_000_000 + rng.range(0, 30_000_000)
    );
    let signature_length = match algorithm {
        "HS256" => 32,
        "ES256" => 64,
        _ => 256,
    };
    let signature = rng.bytes(signature_length);
    format!("{header}.{}.{}", base64url(payload.as_bytes()), base64url(&signature))
}

fn password(rng: &mut Rng) -> String {
    match rng.range(0, 2) {
        0 => {
            let length = rng.range(12, 24);
            rng.alnum(length)
        }
        1 => {
            let word = *rng.pick(&["Summer", "Falcon", "Orchid", "Granite", "Nimbus", "Tango"]);
            format!(
                "{word}{}{}{}",
                rng.digits(4),
                rng.pick(&["!", "#", "*", "-", "."]),
                rng.chars(UPPER, 2)
            )
        }
        _ => {
            let mut out = rng.alnum(10);
            let symbol = rng.pick(&["!", "*", "-", "_", "~", "."]).to_string();
            out.push_str(&symbol);
            let tail = rng.range(4, 10);
            out.push_str(&rng.alnum(tail));
            out
        }
    }
}

/// Every positive sample.
pub fn positives(seed: u64) -> Vec<Sample> {
    let mut set = Builder {
        rng: Rng::new(seed),
        samples: Vec::new(),
    };
    cloud_positives(&mut set);
    code_hosting_positives(&mut set);
    chat_positives(&mut set);
    payments_messaging_positives(&mut set);
    ai_and_registry_positives(&mut set);
    observability_positives(&mut set);
    infrastructure_positives(&mut set);
    database_positives(&mut set);
    key_and_jwt_positives(&mut set);
    generic_positives(&mut set);
    set.samples
}

fn aws_key_id(rng: &mut Rng) -> String {
    let prefix = *rng.pick(&["AKIA", "AKIA", "ASIA"]);
    format!("{prefix}{}", rng.chars(BASE32, 16))
}

fn aws_secret(rng: &mut Rng) -> String {
    rng.chars(BASE64, 40)
}

fn cloud_positives(set: &mut Builder) {
    // AWS: a key id with its secret, as the tools that hold them write them.
    for index in 0..20 {
        let id = aws_key_id(&mut set.rng);
        let secret = aws_secret(&mut set.rng);
        let text = match index % 10 {
            0 => format!("[default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\nregion = us-east-1\n"),
            1 => format!("export AWS_ACCESS_KEY_ID={id}\nexport AWS_SECRET_ACCESS_KEY={secret}\n"),
            2 => format!(
                "{{\"AccessKey\": {{\"UserName\": \"ci\", \"AccessKeyId\": \"{id}\", \"Status\": \"Active\", \"SecretAccessKey\": \"{secret}\"}}}}\n"
            ),
            3 => format!(
                "s3 = boto3.client(\n    \"s3\",\n    aws_access_key_id=\"{id}\",\n    aws_secret_access_key=\"{secret}\",\n)\n"
            ),
            4 => format!(
                "provider \"aws\" {{\n  region     = \"eu-central-1\"\n  access_key = \"{id}\"\n  secret_key = \"{secret}\"\n}}\n"
            ),
            5 => format!("env:\n  AWS_ACCESS_KEY_ID: {id}\n  AWS_SECRET_ACCESS_KEY: {secret}\n"),
            6 => format!(
                "const s3 = new S3Client({{ credentials: {{ accessKeyId: \"{id}\", secretAccessKey: \"{secret}\" }} }});\n"
            ),
            7 => format!(
                "User name,Password,Access key ID,Secret access key,Console login link\nci-bot,,{id},{secret},https://123456789012.signin.aws.amazon.com/console\n"
            ),
            8 => format!("[09:12] ops: new keys for the backup job: {id} / {secret}\n"),
            _ => format!("AWS_ACCESS_KEY_ID=\"{id}\" AWS_SECRET_ACCESS_KEY=\"{secret}\" aws s3 ls s3://acme-backups\n"),
        };
        let context = [
            "ini",
            "shell",
            "json",
            "python",
            "terraform",
            "yaml",
            "javascript",
            "csv",
            "chat",
            "shell",
        ][index % 10];
        set.push("aws", (context, text), Some(secret));
    }

    // GCP: service-account key files and API keys.
    for index in 0..6 {
        let key = pem(
            &mut set.rng,
            "PRIVATE KEY",
            &[0x30, 0x82, 0x04, 0xbe, 0x02, 0x01, 0x00],
            1180,
        );
        let escaped = key.replace('\n', "\\n") + "\\n";
        let project = format!("acme-{}-{}", set.rng.chars(LOWER, 5), set.rng.digits(6));
        let key_id = set.rng.hex(40);
        let client_id = set.rng.digits(21);
        let text = format!(
            "{{\n  \"type\": \"service_account\",\n  \"project_id\": \"{project}\",\n  \"private_key_id\": \"{key_id}\",\n  \"private_key\": \"{escaped}\",\n  \"client_email\": \"deployer@{project}.iam.gserviceaccount.com\",\n  \"client_id\": \"{client_id}\",\n  \"auth_uri\": \"https://accounts.google.com/o/oauth2/auth\",\n  \"token_uri\": \"https://oauth2.googleapis.com/token\"\n}}\n"
        );
        let text = if index % 2 == 0 {
            text
        } else {
            text.replace("\n  ", "").replace(",\n", ",")
        };
        let secret = key.lines().nth(1).expect("body").to_string();
        set.push("gcp", ("json", text), Some(secret));
    }
    set.prefixed(
        "gcp",
        10,
        &Names {
            env: "GOOGLE_API_KEY",
            label: "Maps API key",
        },
        "maps.googleapis.com",
        |rng| format!("AIzaSy{}", rng.chars(BASE64URL, 33)),
    );
    for _ in 0..3 {
        let key = format!("AIzaSy{}", set.rng.chars(BASE64URL, 33));
        set.templated(
            "gcp",
            "html",
            "<script async src=\"https://maps.googleapis.com/maps/api/js?key={s}&callback=initMap\"></script>\n",
            key,
        );
    }

    // Azure: storage account keys, connection strings, SAS tokens.
    for index in 0..14 {
        let key = base64(&set.rng.bytes(64));
        let account = format!("acme{}", set.rng.chars(LOWER, 6));
        match index % 7 {
            0 => set.templated(
                "azure",
                ".env",
                &format!("AZURE_STORAGE_CONNECTION_STRING=\"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={{s}};EndpointSuffix=core.windows.net\"\n"),
                key,
            ),
            1 => set.templated(
                "azure",
                "json",
                &format!("{{\n  \"ConnectionStrings\": {{\n    \"Storage\": \"DefaultEndpointsProtocol=https;AccountName={account};AccountKey={{s}}\"\n  }}\n}}\n"),
                key,
            ),
            2 => set.templated(
                "azure",
                "shell",
                &format!("export AZURE_STORAGE_ACCOUNT={account}\nexport AZURE_STORAGE_KEY={{s}}\naz storage blob list -c backups\n"),
                key,
            ),
            3 => set.templated(
                "azure",
                "terraform",
                "resource \"azurerm_storage_account\" \"logs\" {\n  primary_access_key = \"{s}\"\n}\n",
                key,
            ),
            4 => {
                let sig = base64(&set.rng.bytes(32)).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
                set.templated(
                    "azure",
                    "url",
                    &format!("BACKUP_URL=https://{account}.blob.core.windows.net/backups?sv=2022-11-02&ss=b&srt=co&sp=rwdlac&se=2026-12-31T23:59:59Z&st=2025-01-01T00:00:00Z&spr=https&sig={{s}}\n"),
                    sig,
                )
            }
            5 => {
                let sig = base64(&set.rng.bytes(32)).replace('+', "%2B").replace('/', "%2F").replace('=', "%3D");
                set.templated(
                    "azure",
                    "yaml",
                    "storage:\n  sas_token: \"?sv=2021-06-08&ss=bfqt&srt=sco&sp=rwdlacupx&se=2026-06-01T00:00:00Z&spr=https&sig={s}\"\n",
                    sig,
                )
            }
            _ => {
                let shared = base64(&set.rng.bytes(32));
                set.templated(
                    "azure",
                    "appsettings",
                    &format!("\"ServiceBus\": \"Endpoint=sb://{account}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey={{s}}\"\n"),
                    shared,
                )
            }
        }
    }

    set.prefixed(
        "digitalocean",
        8,
        &Names {
            env: "DIGITALOCEAN_ACCESS_TOKEN",
            label: "DigitalOcean token",
        },
        "api.digitalocean.com",
        |rng| format!("{}_v1_{}", rng.pick(&["dop", "dop", "doo", "dor"]), rng.hex(64)),
    );

    // Alibaba Cloud: AccessKey pairs.
    for index in 0..8 {
        let id_length = *set.rng.pick(&[20, 20, 16, 12]);
        let id = format!("LTAI{}", set.rng.alnum(id_length));
        let secret = set.rng.alnum(30);
        let (context, text, found) = match index % 4 {
            0 => (
                "ini",
                format!("[default]\naccess_key_id = {id}\naccess_key_secret = {secret}\n"),
                secret,
            ),
            1 => (
                "yaml",
                format!("aliyun:\n  accessKeyId: {id}\n  accessKeySecret: {secret}\n"),
                secret,
            ),
            2 => (
                "shell",
                format!("export ALIBABA_CLOUD_ACCESS_KEY_ID={id}\nexport ALIBABA_CLOUD_ACCESS_KEY_SECRET={secret}\n"),
                secret,
            ),
            _ => (
                "java",
                format!(
                    "DefaultProfile profile = DefaultProfile.getProfile(\"cn-hangzhou\", \"{id}\", \"{secret}\");\n"
                ),
                id,
            ),
        };
        set.push("alibaba", (context, text), Some(found));
    }
}

fn code_hosting_positives(set: &mut Builder) {
    let names = Names {
        env: "GITHUB_TOKEN",
        label: "GitHub token",
    };
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_"] {
        set.prefixed("github", 5, &names, "api.github.com", |rng| github_token(rng, prefix));
    }
    set.prefixed("github", 5, &names, "api.github.com", |rng| {
        format!(
            "github_pat_11{}{}_{}",
            rng.chars(BASE32, 10),
            rng.alnum(10),
            rng.alnum(59)
        )
    });
    for _ in 0..3 {
        let token = github_token(&mut set.rng, "ghp_");
        set.templated(
            "github",
            "git-config",
            "[remote \"origin\"]\n\turl = https://deploy-bot:{s}@github.com/acme/infra.git\n",
            token,
        );
    }

    let names = Names {
        env: "GITLAB_TOKEN",
        label: "GitLab token",
    };
    set.prefixed("gitlab", 6, &names, "gitlab.com", |rng| {
        format!("glpat-{}", rng.chars(BASE64URL, 20))
    });
    set.prefixed("gitlab", 3, &names, "gitlab.com", |rng| {
        format!(
            "glpat-{}.01.{}",
            rng.chars(BASE64URL, 38),
            rng.chars("0123456789abcdefghijklmnopqrstuvwxyz", 9)
        )
    });
    for _ in 0..3 {
        let token = format!("glrt-{}", set.rng.chars(BASE64URL, 20));
        set.templated(
            "gitlab",
            "toml",
            "[[runners]]\n  name = \"docker-runner\"\n  url = \"https://gitlab.com\"\n  token = \"{s}\"\n  executor = \"docker\"\n",
            token,
        );
    }
    for _ in 0..2 {
        let token = format!("glptt-{}", set.rng.hex(40));
        set.templated(
            "gitlab",
            "shell",
            "curl -X POST --fail -F token={s} -F ref=main https://gitlab.com/api/v4/projects/42/trigger/pipeline\n",
            token,
        );
    }
    for _ in 0..2 {
        let token = format!("gldt-{}", set.rng.chars(BASE64URL, 20));
        set.templated(
            "gitlab",
            "shell",
            "docker login registry.gitlab.com -u gitlab+deploy-token-7 -p {s}\n",
            token,
        );
    }

    let names = Names {
        env: "BITBUCKET_APP_PASSWORD",
        label: "Bitbucket app password",
    };
    set.prefixed("bitbucket", 6, &names, "api.bitbucket.org", |rng| {
        format!("ATBB{}{}", rng.alnum(24), rng.chars("0123456789ABCDEF", 8))
    });
    set.prefixed(
        "bitbucket",
        4,
        &Names {
            env: "BITBUCKET_ACCESS_TOKEN",
            label: "Bitbucket access token",
        },
        "api.bitbucket.org",
        |rng| {
            format!(
                "ATCTT3xFfGN0{}={}",
                rng.chars(BASE64URL, 170),
                rng.chars("0123456789ABCDEF", 8)
            )
        },
    );
}

fn chat_positives(set: &mut Builder) {
    let names = Names {
        env: "SLACK_BOT_TOKEN",
        label: "Slack bot token",
    };
    set.prefixed("slack", 6, &names, "slack.com/api", |rng| {
        format!("xoxb-{}-{}-{}", rng.digits(12), rng.digits(13), rng.alnum(24))
    });
    let names = Names {
        env: "SLACK_USER_TOKEN",
        label: "Slack user token",
    };
    set.prefixed("slack", 4, &names, "slack.com/api", |rng| {
        format!(
            "xoxp-{}-{}-{}-{}",
            rng.digits(12),
            rng.digits(12),
            rng.digits(13),
            rng.hex(32)
        )
    });
    let names = Names {
        env: "SLACK_APP_TOKEN",
        label: "Slack app-level token",
    };
    set.prefixed("slack", 4, &names, "slack.com/api", |rng| {
        format!(
            "xapp-1-A{}-{}-{}",
            rng.chars(&(UPPER.to_string() + DIGITS), 10),
            rng.digits(13),
            rng.hex(64)
        )
    });
    let names = Names {
        env: "SLACK_WEBHOOK_URL",
        label: "Slack webhook",
    };
    for _ in 0..6 {
        let url = format!(
            "https://hooks.slack.com/services/T{}/B{}/{}",
            set.rng.chars(&(UPPER.to_string() + DIGITS), 8),
            set.rng.chars(&(UPPER.to_string() + DIGITS), 10),
            set.rng.alnum(24)
        );
        set.push_assigned("slack", &names, url);
    }

    for index in 0..8 {
        let id = set.rng.digits(19);
        let token = set.rng.chars(BASE64URL, 68);
        let url = format!("https://discord.com/api/webhooks/{id}/{token}");
        if index % 2 == 0 {
            set.push_assigned(
                "discord",
                &Names {
                    env: "DISCORD_WEBHOOK_URL",
                    label: "Discord webhook",
                },
                url,
            );
        } else {
            set.templated(
                "discord",
                "python",
                "import requests\n\nWEBHOOK = \"{s}\"\nrequests.post(WEBHOOK, json={\"content\": \"deploy finished\"})\n",
                url,
            );
        }
    }
    for index in 0..6 {
        let user_id = set.rng.digits(18);
        let token = format!(
            "{}.{}.{}",
            base64url(user_id.as_bytes()),
            set.rng.chars(BASE64URL, 6),
            set.rng.chars(BASE64URL, 38)
        );
        if index % 2 == 0 {
            set.push_assigned(
                "discord",
                &Names {
                    env: "DISCORD_BOT_TOKEN",
                    label: "Discord bot token",
                },
                token,
            );
        } else {
            set.templated(
                "discord",
                "python",
                "import discord\n\nclient = discord.Client(intents=discord.Intents.default())\nclient.run(\"{s}\")\n",
                token,
            );
        }
    }

    for index in 0..8 {
        let token = format!("{}:AA{}", set.rng.digits(10), set.rng.chars(BASE64URL, 33));
        if index % 2 == 0 {
            set.push_assigned(
                "telegram",
                &Names {
                    env: "TELEGRAM_BOT_TOKEN",
                    label: "Telegram bot token",
                },
                token,
            );
        } else {
            set.templated(
                "telegram",
                "shell",
                "curl -s \"https://api.telegram.org/bot{s}/sendMessage\" -d chat_id=-100123 -d text=done\n",
                token,
            );
        }
    }

    for index in 0..8 {
        let url = format!(
            "https://acme{}.webhook.office.com/webhookb2/{}@{}/IncomingWebhook/{}/{}",
            set.rng.chars(LOWER, 4),
            set.rng.uuid(),
            set.rng.uuid(),
            set.rng.hex(32),
            set.rng.uuid()
        );
        let url = if index % 3 == 0 {
            format!("{url}/V2{}", set.rng.chars(BASE64URL, 44))
        } else {
            url
        };
        set.push_assigned(
            "teams",
            &Names {
                env: "TEAMS_WEBHOOK_URL",
                label: "Teams webhook",
            },
            url,
        );
    }
}

fn payments_messaging_positives(set: &mut Builder) {
    let names = Names {
        env: "STRIPE_SECRET_KEY",
        label: "Stripe key",
    };
    set.prefixed("payments", 6, &names, "api.stripe.com", |rng| {
        let body_length = *rng.pick(&[24, 99]);
        format!("{}_live_{}", rng.pick(&["sk", "sk", "rk"]), rng.alnum(body_length))
    });
    set.assigned(
        "payments",
        3,
        &Names {
            env: "STRIPE_WEBHOOK_SECRET",
            label: "Stripe webhook secret",
        },
        |rng| format!("whsec_{}", rng.alnum(32)),
    );
    set.prefixed(
        "payments",
        4,
        &Names {
            env: "SQUARE_ACCESS_TOKEN",
            label: "Square token",
        },
        "connect.squareup.com",
        |rng| format!("EAAA{}", rng.chars(BASE64URL, 60)),
    );
    set.assigned(
        "payments",
        2,
        &Names {
            env: "SQUARE_APPLICATION_SECRET",
            label: "Square OAuth secret",
        },
        |rng| format!("sq0csp-{}", rng.chars(BASE64URL, 43)),
    );
    set.assigned(
        "payments",
        3,
        &Names {
            env: "BRAINTREE_ACCESS_TOKEN",
            label: "Braintree token",
        },
        |rng| {
            format!(
                "access_token$production${}${}",
                rng.chars(&(LOWER.to_string() + DIGITS), 16),
                rng.hex(32)
            )
        },
    );
    set.prefixed(
        "payments",
        3,
        &Names {
            env: "SHOPIFY_ACCESS_TOKEN",
            label: "Shopify token",
        },
        "acme.myshopify.com",
        |rng| format!("shpat_{}", rng.hex(32)),
    );

    set.assigned(
        "messaging",
        4,
        &Names {
            env: "TWILIO_AUTH_TOKEN",
            label: "Twilio auth token",
        },
        |rng| rng.hex(32),
    );
    for _ in 0..3 {
        let key = format!("SK{}", set.rng.hex(32));
        let sid = format!("AC{}", set.rng.hex(32));
        let api_secret = set.rng.alnum(32);
        set.templated(
            "messaging",
            "python",
            &format!("from twilio.rest import Client\n\nclient = Client(\"{{s}}\", \"{api_secret}\", \"{sid}\")\n"),
            key,
        );
    }
    set.prefixed(
        "messaging",
        5,
        &Names {
            env: "SENDGRID_API_KEY",
            label: "SendGrid key",
        },
        "api.sendgrid.com",
        |rng| format!("SG.{}.{}", rng.chars(BASE64URL, 22), rng.chars(BASE64URL, 43)),
    );
    set.assigned(
        "messaging",
        4,
        &Names {
            env: "MAILGUN_API_KEY",
            label: "Mailgun key",
        },
        |rng| format!("key-{}", rng.hex(32)),
    );
    set.assigned(
        "messaging",
        3,
        &Names {
            env: "MAILCHIMP_API_KEY",
            label: "Mailchimp key",
        },
        |rng| format!("{}-us{}", rng.hex(32), rng.range(1, 21)),
    );
    set.assigned(
        "messaging",
        3,
        &Names {
            env: "POSTMARK_SERVER_TOKEN",
            label: "Postmark token",
        },
        |rng| rng.uuid(),
    );
}

fn ai_and_registry_positives(set: &mut Builder) {
    let names = Names {
        env: "OPENAI_API_KEY",
        label: "OpenAI key",
    };
    set.prefixed("ai", 4, &names, "api.openai.com", |rng| {
        format!(
            "sk-proj-{}T3BlbkFJ{}",
            rng.chars(BASE64URL, 74),
            rng.chars(BASE64URL, 74)
        )
    });
    set.prefixed("ai", 2, &names, "api.openai.com", |rng| {
        format!("sk-{}T3BlbkFJ{}", rng.alnum(20), rng.alnum(20))
    });
    set.prefixed(
        "ai",
        4,
        &Names {
            env: "ANTHROPIC_API_KEY",
            label: "Anthropic key",
        },
        "api.anthropic.com",
        |rng| format!("sk-ant-api03-{}AA", rng.chars(BASE64URL, 93)),
    );
    set.prefixed(
        "ai",
        4,
        &Names {
            env: "HF_TOKEN",
            label: "Hugging Face token",
        },
        "huggingface.co",
        |rng| format!("hf_{}", rng.chars(&(LOWER.to_string() + UPPER), 34)),
    );
    set.prefixed(
        "ai",
        2,
        &Names {
            env: "GROQ_API_KEY",
            label: "Groq key",
        },
        "api.groq.com",
        |rng| format!("gsk_{}", rng.alnum(52)),
    );
    set.prefixed(
        "ai",
        2,
        &Names {
            env: "REPLICATE_API_TOKEN",
            label: "Replicate token",
        },
        "api.replicate.com",
        |rng| format!("r8_{}", rng.alnum(37)),
    );
    set.prefixed(
        "ai",
        2,
        &Names {
            env: "XAI_API_KEY",
            label: "xAI key",
        },
        "api.x.ai",
        |rng| format!("xai-{}", rng.alnum(80)),
    );

    let names = Names {
        env: "NPM_TOKEN",
        label: "npm token",
    };
    set.prefixed("registries", 3, &names, "registry.npmjs.org", |rng| {
        let body = rng.alnum(30);
        format!("npm_{body}{}", github_checksum(&body))
    });
    for _ in 0..3 {
        let body = set.rng.alnum(30);
        let token = format!("npm_{body}{}", github_checksum(&body));
        set.templated("registries", ".npmrc", "//registry.npmjs.org/:_authToken={s}\n", token);
    }
    for _ in 0..4 {
        let token = format!("pypi-AgEIcHlwaS5vcmc{}", set.rng.chars(BASE64URL, 160));
        set.templated(
            "registries",
            ".pypirc",
            "[distutils]\nindex-servers = pypi\n\n[pypi]\nusername = __token__\npassword = {s}\n",
            token,
        );
    }
    set.prefixed(
        "registries",
        3,
        &Names {
            env: "GEM_HOST_API_KEY",
            label: "RubyGems key",
        },
        "rubygems.org",
        |rng| format!("rubygems_{}", rng.hex(48)),
    );
    set.prefixed(
        "registries",
        3,
        &Names {
            env: "NUGET_API_KEY",
            label: "NuGet key",
        },
        "api.nuget.org",
        |rng| format!("oy2{}", rng.chars(&(LOWER.to_string() + DIGITS), 43)),
    );
    set.prefixed(
        "registries",
        3,
        &Names {
            env: "CARGO_REGISTRY_TOKEN",
            label: "crates.io token",
        },
        "crates.io",
        |rng| format!("cio{}", rng.alnum(32)),
    );
    set.prefixed(
        "registries",
        3,
        &Names {
            env: "DOCKERHUB_TOKEN",
            label: "Docker Hub token",
        },
        "hub.docker.com",
        |rng| format!("dckr_pat_{}", rng.chars(BASE64URL, 27)),
    );
    for _ in 0..3 {
        let auth = base64(format!("ci-bot:{}", set.rng.alnum(20)).as_bytes());
        set.templated(
            "registries",
            "docker-config",
            "{\n  \"auths\": {\n    \"https://index.docker.io/v1/\": {\n      \"auth\": \"{s}\"\n    }\n  }\n}\n",
            auth,
        );
    }
}

fn observability_positives(set: &mut Builder) {
    set.assigned(
        "observability",
        4,
        &Names {
            env: "DD_API_KEY",
            label: "Datadog API key",
        },
        |rng| rng.hex(32),
    );
    set.assigned(
        "observability",
        2,
        &Names {
            env: "DD_APP_KEY",
            label: "Datadog app key",
        },
        |rng| rng.hex(40),
    );
    for _ in 0..2 {
        let key = set.rng.hex(32);
        set.templated(
            "observability",
            "shell",
            "curl -X GET \"https://api.datadoghq.com/api/v1/validate\" -H \"Accept: application/json\" -H \"DD-API-KEY: {s}\"\n",
            key,
        );
    }
    set.prefixed(
        "observability",
        4,
        &Names {
            env: "NEW_RELIC_API_KEY",
            label: "New Relic key",
        },
        "api.newrelic.com",
        |rng| format!("NRAK-{}", rng.chars(&(UPPER.to_string() + DIGITS), 27)),
    );
    set.assigned(
        "observability",
        3,
        &Names {
            env: "NEW_RELIC_LICENSE_KEY",
            label: "New Relic license key",
        },
        |rng| format!("{}NRAL", rng.hex(36)),
    );
    set.prefixed("observability", 4, &Names { env: "SENTRY_AUTH_TOKEN", label: "Sentry token" }, "sentry.io", |rng| {
        if rng.range(0, 1) == 0 {
            format!("sntryu_{}", rng.hex(64))
        } else {
            let claims = base64(
                format!(
                    "{{\"iat\":{},\"url\":\"https://sentry.io\",\"region_url\":\"https://us.sentry.io\",\"org\":\"acme\"}}",
                    1_700_000_000 + rng.range(0, 9_999_999)
                )
                .as_bytes(),
            );
            format!("sntrys_{}_{}", claims.trim_end_matches('='), rng.chars(BASE64URL, 43))
        }
    });
    set.prefixed(
        "observability",
        4,
        &Names {
            env: "GRAFANA_TOKEN",
            label: "Grafana token",
        },
        "acme.grafana.net",
        |rng| {
            if rng.range(0, 1) == 0 {
                format!("glsa_{}_{}", rng.alnum(32), rng.hex(8))
            } else {
                let claims = base64(
                    format!(
                        "{{\"o\":\"{}\",\"n\":\"ci-{}\",\"k\":\"{}\",\"m\":{{\"r\":\"prod-us-east-0\"}}}}",
                        rng.digits(6),
                        rng.chars(LOWER, 5),
                        rng.alnum(24)
                    )
                    .as_bytes(),
                );
                format!("glc_{claims}")
            }
        },
    );
}

fn infrastructure_positives(set: &mut Builder) {
    set.prefixed(
        "infrastructure",
        4,
        &Names {
            env: "VAULT_TOKEN",
            label: "Vault token",
        },
        "vault.acme.internal:8200",
        |rng| format!("hvs.{}", rng.chars(BASE64URL, 90)),
    );
    for index in 0..4 {
        let token = format!("s.{}", set.rng.alnum(24));
        let template = match index {
            0 => "export VAULT_TOKEN={s}\nvault kv get secret/app\n",
            1 => "export BAO_TOKEN=\"{s}\"\nbao kv get secret/app\n",
            2 => "curl --header \"X-Vault-Token: {s}\" https://vault.acme.internal:8200/v1/secret/data/app\n",
            _ => "vault:\n  address: https://vault.acme.internal:8200\n  token: {s}\n",
        };
        set.templated("infrastructure", "vault", template, token);
    }
    for index in 0..4 {
        let token = format!("{}.atlasv1.{}", set.rng.alnum(14), set.rng.chars(BASE64URL, 67));
        if index % 2 == 0 {
            set.templated(
                "infrastructure",
                "terraformrc",
                "credentials \"app.terraform.io\" {\n  token = \"{s}\"\n}\n",
                token,
            );
        } else {
            set.push_assigned(
                "infrastructure",
                &Names {
                    env: "TFE_TOKEN",
                    label: "Terraform Cloud token",
                },
                token,
            );
        }
    }
    for index in 0..5 {
        let token = if index % 2 == 0 {
            jwt(&mut set.rng)
        } else {
            format!(
                "{}.{}",
                set.rng.chars(&(LOWER.to_string() + DIGITS), 6),
                set.rng.chars(&(LOWER.to_string() + DIGITS), 16)
            )
        };
        let ca = base64(&set.rng.bytes(600));
        set.templated(
            "infrastructure",
            "kubeconfig",
            &format!("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://10.0.0.1:6443\n  name: prod\ncontexts:\n- context:\n    cluster: prod\n    user: ci\n  name: prod\ncurrent-context: prod\nusers:\n- name: ci\n  user:\n    token: {{s}}\n"),
            token,
        );
    }
    for _ in 0..2 {
        let key = base64(&set.rng.bytes(1190));
        set.templated(
            "infrastructure",
            "kubeconfig",
            "users:\n- name: admin\n  user:\n    client-certificate-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0t\n    client-key-data: {s}\n",
            key,
        );
    }
    set.prefixed(
        "infrastructure",
        3,
        &Names {
            env: "HEROKU_API_KEY",
            label: "Heroku key",
        },
        "api.heroku.com",
        |rng| format!("HRKU-AA{}", rng.chars(BASE64URL, 58)),
    );
    set.assigned(
        "infrastructure",
        2,
        &Names {
            env: "HEROKU_API_KEY",
            label: "Heroku API key",
        },
        |rng| rng.uuid(),
    );
    set.assigned(
        "infrastructure",
        4,
        &Names {
            env: "CLOUDFLARE_API_TOKEN",
            label: "Cloudflare token",
        },
        |rng| rng.chars(BASE64URL, 40),
    );
}

fn database_positives(set: &mut Builder) {
    let schemes = [
        ("postgresql", "postgres", 5432),
        ("postgres", "postgres", 5432),
        ("mysql", "mysql", 3306),
        ("mongodb+srv", "mongodb", 0),
        ("mongodb", "mongodb", 27017),
        ("redis", "redis", 6379),
        ("rediss", "redis", 6380),
        ("amqps", "amqp", 5671),
        ("amqp", "amqp", 5672),
    ];
    for index in 0..27 {
        let (scheme, _, port) = schemes[index % schemes.len()];
        let secret = password(&mut set.rng);
        let user = *set.rng.pick(&["app", "svc_billing", "admin", "etl", "default"]);
        let host = format!(
            "{}.{}",
            set.rng.pick(&["db-1", "primary", "cache", "mq"]),
            set.rng
                .pick(&["acme.internal", "eu-west-1.rds.amazonaws.com", "cluster0.mongodb.net"])
        );
        let host = if port == 0 { host } else { format!("{host}:{port}") };
        let uri = format!("{scheme}://{user}:{secret}@{host}/app");
        let placed = match index % 5 {
            0 => (".env", format!("DATABASE_URL={uri}\n")),
            1 => ("yaml", format!("database:\n  url: \"{uri}\"\n  pool: 10\n")),
            2 => (
                "python",
                format!("engine = create_engine(\"{uri}\", pool_pre_ping=True)\n"),
            ),
            3 => (
                "log",
                format!("2024-06-01 12:00:03 ERROR could not connect to {uri}: connection refused\n"),
            ),
            _ => (
                "docker-compose",
                format!("services:\n  worker:\n    environment:\n      BROKER_URL: {uri}\n"),
            ),
        };
        set.push("databases", placed, Some(secret));
    }
}

fn key_and_jwt_positives(set: &mut Builder) {
    let kinds: [(&str, &[u8], usize); 5] = [
        (
            "RSA PRIVATE KEY",
            &[0x30, 0x82, 0x04, 0xa4, 0x02, 0x01, 0x00, 0x02, 0x82, 0x01, 0x01],
            1180,
        ),
        ("EC PRIVATE KEY", &[0x30, 0x77, 0x02, 0x01, 0x01, 0x04, 0x20], 112),
        ("OPENSSH PRIVATE KEY", b"openssh-key-v1\0\0\0\0\x04none", 380),
        ("PRIVATE KEY", &[0x30, 0x82, 0x04, 0xbd, 0x02, 0x01, 0x00], 1200),
        ("ENCRYPTED PRIVATE KEY", &[0x30, 0x82, 0x05, 0x0c, 0x30, 0x40], 1260),
    ];
    for index in 0..20 {
        let (label, prefix, length) = kinds[index % kinds.len()];
        let key = pem(&mut set.rng, label, prefix, length);
        let secret = key.lines().nth(1).expect("body").to_string();
        let placed = match index % 4 {
            0 => ("pem", format!("{key}\n")),
            1 => ("yaml", format!("tls:\n  key: |\n    {}\n", key.replace('\n', "\n    "))),
            2 => (
                "json",
                format!(
                    "{{\"name\": \"deploy\", \"key\": \"{}\\n\"}}\n",
                    key.replace('\n', "\\n")
                ),
            ),
            _ => ("python", format!("SIGNING_KEY = \"\"\"{key}\n\"\"\"\n")),
        };
        set.push("private-keys", placed, Some(secret));
    }
    for _ in 0..5 {
        let body = pem_body(&mut set.rng, &[0x95, 0x03, 0xc6, 0x04], 900);
        let checksum = base64(&set.rng.bytes(3));
        let block = format!(
            "-----BEGIN PGP PRIVATE KEY BLOCK-----\n\n{body}\n={checksum}\n-----END PGP PRIVATE KEY BLOCK-----\n"
        );
        let secret = body.lines().next().expect("line").to_string();
        set.push("private-keys", ("pgp", block), Some(secret));
    }

    for index in 0..15 {
        let token = jwt(&mut set.rng);
        let placed = match index % 5 {
            0 => (
                "http",
                format!("GET /api/orders HTTP/1.1\nAuthorization: Bearer {token}\n"),
            ),
            1 => (
                "json",
                format!("{{\"access_token\": \"{token}\", \"token_type\": \"Bearer\", \"expires_in\": 3600}}\n"),
            ),
            2 => (
                "javascript",
                format!("localStorage.setItem(\"session\", \"{token}\");\n"),
            ),
            3 => (
                "log",
                format!("10.1.2.3 - - [02/May/2024:10:01:07 +0000] \"GET /cb?id_token={token} HTTP/1.1\" 302 0\n"),
            ),
            _ => (".env", format!("SERVICE_JWT={token}\n")),
        };
        set.push("jwt", placed, Some(token));
    }
}

fn generic_positives(set: &mut Builder) {
    let names = [
        Names {
            env: "DB_PASSWORD",
            label: "database password",
        },
        Names {
            env: "API_KEY",
            label: "API key",
        },
        Names {
            env: "CLIENT_SECRET",
            label: "client secret",
        },
        Names {
            env: "AUTH_TOKEN",
            label: "auth token",
        },
        Names {
            env: "SECRET_KEY",
            label: "secret key",
        },
        Names {
            env: "SMTP_PASSWORD",
            label: "SMTP password",
        },
        Names {
            env: "MISTRAL_API_KEY",
            label: "Mistral key",
        },
        Names {
            env: "ENCRYPTION_SECRET",
            label: "encryption secret",
        },
    ];
    for index in 0..40 {
        let name = &names[index % names.len()];
        let secret = match index % 3 {
            0 => set.rng.alnum(32),
            1 => base64(&set.rng.bytes(24)),
            _ => password(&mut set.rng),
        };
        set.push_assigned("generic", name, secret);
    }
}

/// Every negative sample.
pub fn negatives(seed: u64) -> Vec<Sample> {
    let mut set = Builder {
        rng: Rng::new(seed),
        samples: Vec::new(),
    };
    documentation_negatives(&mut set);
    template_negatives(&mut set);
    checksum_negatives(&mut set);
    public_material_negatives(&mut set);
    hash_and_id_negatives(&mut set);
    code_negatives(&mut set);
    secret_named_setting_negatives(&mut set);
    provider_identifier_negatives(&mut set);
    url_negatives(&mut set);
    near_miss_negatives(&mut set);
    set.samples
}

fn documentation_negatives(set: &mut Builder) {
    let values = [
        ("AWS_ACCESS_KEY_ID", "AKIAIOSFODNN7EXAMPLE"),
        ("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"),
        ("GITHUB_TOKEN", "ghp_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ("API_KEY", "your_api_key_here"),
        ("API_KEY", "<your-api-key>"),
        ("SLACK_BOT_TOKEN", "xoxb-your-bot-token"),
        ("STRIPE_SECRET_KEY", "sk_live_xxxxxxxxxxxxxxxxxxxxxxxx"),
        ("DB_PASSWORD", "changeme"),
        ("DB_PASSWORD", "password123"),
        ("SECRET_KEY", "123456789012345678901234567890"),
        ("AUTH_TOKEN", "REPLACE_WITH_YOUR_TOKEN"),
        ("OPENAI_API_KEY", "sk-..."),
        ("CLIENT_SECRET", "YOUR_CLIENT_SECRET"),
        (
            "SENDGRID_API_KEY",
            "SG.xxxxxxxxxxxxxxxxxxxxxx.xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ),
        ("TWILIO_AUTH_TOKEN", "your_auth_token"),
        ("DD_API_KEY", "<DATADOG_API_KEY>"),
        ("JWT_SECRET", "supersecret"),
        ("ADMIN_PASSWORD", "admin"),
        ("API_TOKEN", "0000000000000000000000000000000000000000"),
        (
            "ANTHROPIC_API_KEY",
            "sk-ant-api03-xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        ),
        ("HF_TOKEN", "hf_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
        ("NPM_TOKEN", "npm_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX"),
        ("PASSWORD", "********"),
        ("SECRET", "TODO"),
        ("AZURE_CLIENT_SECRET", "<client-secret>"),
    ];
    for (env, value) in values {
        for _ in 0..3 {
            let placed = assignment(&mut set.rng, &Names { env, label: "key" }, value);
            set.push("documentation placeholder", placed, None);
        }
    }
    set.negative(
        "documentation placeholder",
        "markdown",
        "## Configure\n\nSet your credentials in `~/.aws/credentials`:\n\n```ini\n[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n```\n".into(),
    );
    set.negative(
        "documentation placeholder",
        "markdown",
        "Replace `<TOKEN>` with a personal access token (it looks like `ghp_` followed by 36 characters).\n".into(),
    );
    set.negative(
        "documentation placeholder",
        "markdown",
        "DATABASE_URL=postgres://USER:PASSWORD@HOST:5432/DBNAME\n".into(),
    );
    set.negative(
        "documentation placeholder",
        "markdown",
        "| variable | example |\n|---|---|\n| `SLACK_WEBHOOK_URL` | `https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX` |\n".into(),
    );
}

fn template_negatives(set: &mut Builder) {
    let envs = [
        "API_KEY",
        "DB_PASSWORD",
        "GITHUB_TOKEN",
        "CLIENT_SECRET",
        "AWS_SECRET_ACCESS_KEY",
        "SLACK_TOKEN",
        "AUTH_TOKEN",
    ];
    for env in envs {
        let snake = lower_snake(env);
        let references = [
            format!("${{{env}}}"),
            format!("{{{{ .Values.{} }}}}", camel(env)),
            format!("{{{{ secrets.{env} }}}}"),
            format!("$(cat /run/secrets/{snake})"),
            format!("%({snake})s"),
            format!("${{env:{env}}}"),
            format!("#{{ENV['{env}']}}"),
            format!("{{{{ vault \"secret/data/app\" \"{snake}\" }}}}"),
        ];
        for reference in references {
            let placed = assignment(&mut set.rng, &Names { env, label: "secret" }, &reference);
            set.push("template or reference", placed, None);
        }
        set.negative(
            "template or reference",
            "python",
            format!("{snake} = os.environ[\"{env}\"]\n"),
        );
        set.negative(
            "template or reference",
            "javascript",
            format!("const {} = process.env.{env};\n", camel(env)),
        );
        set.negative(
            "template or reference",
            "go",
            format!("{} := os.Getenv(\"{env}\")\n", camel(env)),
        );
        set.negative(
            "template or reference",
            "github-actions",
            format!("    env:\n      {env}: ${{{{ secrets.{env} }}}}\n"),
        );
        set.negative(
            "template or reference",
            "terraform",
            format!("  {snake} = var.{snake}\n  other = data.aws_ssm_parameter.{snake}.value\n"),
        );
        set.negative(
            "template or reference",
            "kubernetes",
            format!("        - name: {env}\n          valueFrom:\n            secretKeyRef:\n              name: app-secrets\n              key: {snake}\n"),
        );
    }
}

fn checksum_negatives(set: &mut Builder) {
    let names = Names {
        env: "GITHUB_TOKEN",
        label: "GitHub token",
    };
    for prefix in ["ghp_", "gho_", "ghu_", "ghs_", "ghr_", "npm_"] {
        for _ in 0..6 {
            let valid = github_token(&mut set.rng, prefix);
            // Change one character of the body: the checksum no longer matches.
            let mut bytes = valid.into_bytes();
            let position = set.rng.range(prefix.len(), prefix.len() + 29);
            bytes[position] = if bytes[position] == b'q' { b'Q' } else { b'q' };
            let broken = String::from_utf8(bytes).expect("ASCII");
            let placed = anywhere(&mut set.rng, &names, &broken, "api.github.com");
            set.push("bad checksum", placed, None);
        }
    }
}

fn public_material_negatives(set: &mut Builder) {
    for index in 0..12 {
        let blob = base64(&set.rng.bytes(279));
        let text = match index % 3 {
            0 => format!("ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQ{blob} deploy@ci\n"),
            1 => format!(
                "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{} alice@laptop\n",
                set.rng.chars(BASE64, 43)
            ),
            _ => format!(
                "github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBB{}=\n",
                set.rng.chars(BASE64, 91)
            ),
        };
        set.negative("public key or certificate", "ssh", text);
    }
    for index in 0..12 {
        let (label, prefix, length) = match index % 3 {
            0 => ("PUBLIC KEY", &[0x30u8, 0x82, 0x01, 0x22, 0x30, 0x0d][..], 288),
            1 => ("CERTIFICATE", &[0x30u8, 0x82, 0x03, 0x5e, 0x30, 0x82][..], 860),
            _ => ("RSA PUBLIC KEY", &[0x30u8, 0x82, 0x01, 0x0a, 0x02, 0x82][..], 264),
        };
        let block = pem(&mut set.rng, label, prefix, length);
        let text = if index % 2 == 0 {
            format!("{block}\n")
        } else {
            format!("tls:\n  cert: |\n    {}\n", block.replace('\n', "\n    "))
        };
        set.negative("public key or certificate", "pem", text);
    }
    for _ in 0..4 {
        let body = pem_body(&mut set.rng, &[0x99, 0x01, 0x0d, 0x04], 600);
        set.negative(
            "public key or certificate",
            "pgp",
            format!("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n{body}\n-----END PGP PUBLIC KEY BLOCK-----\n"),
        );
    }
    for _ in 0..4 {
        let ca = base64(&set.rng.bytes(900));
        set.negative(
            "public key or certificate",
            "kubeconfig",
            format!("apiVersion: v1\nkind: Config\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://k8s.acme.internal:6443\n  name: prod\nusers:\n- name: ci\n  user:\n    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: aws\n      args: [\"eks\", \"get-token\", \"--cluster-name\", \"prod\"]\n"),
        );
    }
}

fn hash_and_id_negatives(set: &mut Builder) {
    for index in 0..60 {
        let (context, text) = match index % 12 {
            0 => (
                "git",
                format!(
                    "commit {}\nAuthor: Dana <dana@acme.io>\n\n    fix: retry on 503\n",
                    set.rng.hex(40)
                ),
            ),
            1 => (
                "shell",
                format!("{}  dist/steward-x86_64-linux.tar.gz\n", set.rng.hex(64)),
            ),
            2 => ("yaml", format!("image: ghcr.io/acme/api@sha256:{}\n", set.rng.hex(64))),
            3 => (
                "log",
                format!(
                    "2024-04-01T10:00:00Z INFO request_id={} trace_id={} status=200\n",
                    set.rng.uuid(),
                    set.rng.hex(32)
                ),
            ),
            4 => (
                "json",
                format!(
                    "{{\"id\": \"{}\", \"etag\": \"\\\"{}\\\"\", \"md5\": \"{}\"}}\n",
                    set.rng.uuid(),
                    set.rng.hex(32),
                    set.rng.hex(32)
                ),
            ),
            5 => (
                "package-lock",
                format!(
                    "    \"node_modules/lodash\": {{\n      \"version\": \"4.17.21\",\n      \"resolved\": \"https://registry.npmjs.org/lodash/-/lodash-4.17.21.tgz\",\n      \"integrity\": \"sha512-{}\"\n    }},\n",
                    base64(&set.rng.bytes(64))
                ),
            ),
            6 => (
                "yarn.lock",
                format!("  checksum: {}\n  languageName: node\n", set.rng.hex(128)),
            ),
            7 => (
                "go.sum",
                format!("github.com/acme/lib v1.2.3 h1:{}\n", base64(&set.rng.bytes(32))),
            ),
            8 => (
                "Cargo.lock",
                format!(
                    "[[package]]\nname = \"serde\"\nversion = \"1.0.200\"\nsource = \"registry+https://github.com/rust-lang/crates.io-index\"\nchecksum = \"{}\"\n",
                    set.rng.hex(64)
                ),
            ),
            9 => (
                "terraform-lock",
                format!(
                    "provider \"registry.terraform.io/hashicorp/aws\" {{\n  version = \"5.40.0\"\n  hashes = [\n    \"h1:{}\",\n    \"zh:{}\",\n  ]\n}}\n",
                    base64(&set.rng.bytes(32)),
                    set.rng.hex(64)
                ),
            ),
            10 => (
                "json",
                format!(
                    "{{\"thumbnail\": \"data:image/png;base64,{}\"}}\n",
                    base64(&set.rng.bytes(180))
                ),
            ),
            _ => (
                "html",
                format!(
                    "<script src=\"https://cdn.acme.io/app.js\" integrity=\"sha384-{}\" crossorigin=\"anonymous\"></script>\n",
                    base64(&set.rng.bytes(48))
                ),
            ),
        };
        set.negative("hash, id or encoded data", context, text);
    }
    for index in 0..12 {
        let text = match index % 4 {
            0 => format!(
                "  \"{}\": \"{}\",\n",
                set.rng.chars(LOWER, 8),
                base64(b"Hello, world! This is a harmless greeting message.")
            ),
            1 => format!("BUILD_ID={}\nCOMMIT_SHA={}\n", set.rng.digits(8), set.rng.hex(40)),
            2 => format!(
                "<meta name=\"csrf-param\" content=\"authenticity_token\" />\n<link rel=\"preload\" href=\"/assets/app-{}.css\">\n",
                set.rng.hex(32)
            ),
            _ => format!(
                "\"sessionId\": \"{}\", \"correlationId\": \"{}\"\n",
                set.rng.uuid(),
                set.rng.uuid()
            ),
        };
        set.negative("hash, id or encoded data", "misc", text);
    }
}

fn code_negatives(set: &mut Builder) {
    let snippets = [
        "const AUTH_TOKEN_HEADER_NAME = \"X-Auth-Token\";\n",
        "public String getSecretKey() { return this.secretKey; }\n",
        "def get_api_key(self) -> str:\n    return self._api_key\n",
        "password_reset_token = generate_password_reset_token(user)\n",
        "private static final String PASSWORD_FIELD = \"password\";\n",
        "API_KEY_HEADER = \"x-api-key\"\n",
        "if token is None:\n    raise AuthenticationError(\"token is required\")\n",
        "let secret = vault.read(\"secret/data/app\").await?;\n",
        "func (c *Client) SetToken(token string) { c.token = token }\n",
        "TOKEN_EXPIRY_SECONDS = 3600\n",
        "export const SECRET_MANAGER_ARN_PARAMETER = \"SecretManagerArnParameter\";\n",
        "    secretName: app-db-credentials\n    secretKey: password\n",
        "password: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n",
        "PASSWORD_MIN_LENGTH=12\nPASSWORD_REQUIRE_SYMBOLS=true\n",
        "<input type=\"password\" name=\"password\" autocomplete=\"current-password\" />\n",
        "token_type: Bearer\naccess_token_lifetime: 3600\n",
        "    \"secret\": false,\n    \"sensitive\": true,\n",
        "api_key = request.headers.get(\"X-API-Key\")\n",
        "SECRET_KEY_BASE_LENGTH = 128\n",
        "client_secret = config.get(\"oauth\", \"client_secret\")\n",
        "# Set GITHUB_TOKEN in the repository secrets before running this workflow.\n",
        "const tokenizer = new Tokenizer({ maxTokens: 4096, model: 'gpt-4o' });\n",
        "password = getpass.getpass(\"Password: \")\n",
        "token = jwt.encode(payload, settings.SIGNING_KEY, algorithm=\"HS256\")\n",
        "AWS_SECRET_ACCESS_KEY_PARAMETER_NAME=/prod/aws/secret-access-key\n",
        "<key>NSAppTransportSecurity</key>\n",
        "ssh-keygen -t ed25519 -C \"deploy@acme\" -f ~/.ssh/id_ed25519\n",
        "private_key_path = \"~/.ssh/id_rsa\"\n",
        "\"password_policy\": {\"min_length\": 14, \"require_uppercase\": true}\n",
        "secret_ref:\n  name: stripe-credentials\n  key: STRIPE_SECRET_KEY\n",
    ];
    for snippet in snippets {
        set.negative("code identifier", "code", snippet.to_string());
    }
    for _ in 0..10 {
        let identifier = format!(
            "{}{}{}",
            set.rng.pick(&["get", "set", "load", "validate", "refresh"]),
            set.rng
                .pick(&["AccessToken", "ApiKey", "ClientSecret", "Password", "SecretValue"]),
            set.rng
                .pick(&["FromEnvironment", "ForRequest", "Async", "Handler", "WithRetries"])
        );
        set.negative(
            "code identifier",
            "javascript",
            format!("export const token = await {identifier}(ctx, {{ cache: true }});\n"),
        );
    }
    for _ in 0..10 {
        let mut line = String::from("!function(e,t){\"use strict\";");
        for _ in 0..40 {
            line.push_str(&format!(
                "var {}=function({}){{return {}.{}({})}};",
                set.rng.chars(LOWER, 1),
                set.rng.chars(LOWER, 1),
                set.rng.chars(LOWER, 1),
                set.rng
                    .pick(&["apply", "call", "bind", "push", "slice", "token", "secret"]),
                set.rng.chars("abcdefghijklmnopqrstuvwxyz,", 5)
            ));
        }
        line.push_str(&format!(
            "e.exports={{version:\"{}\",hash:\"{}\",chunk:\"{}\"}}}}(this);\n",
            set.rng.digits(2),
            set.rng.hex(20),
            set.rng.alnum(8)
        ));
        set.negative("minified js", "javascript", line);
    }
}

fn secret_named_setting_negatives(set: &mut Builder) {
    let settings = [
        "spring.security.oauth2.client.registration.github.client-secret=${GITHUB_CLIENT_SECRET}\n",
        "server.ssl.key-store-password=${KEYSTORE_PASSWORD}\n",
        "jwt.secret.expiration=86400000\n",
        "api_key: !ENV ${API_KEY}\n",
        "password: ENC(G8s9dKq2Lm4Xz7Wc1Vb)\n",
        "secret: vault:secret/data/app#password\n",
        "token: /var/run/secrets/kubernetes.io/serviceaccount/token\n",
        "private_key: file://keys/deploy.pem\n",
        "access_key: arn:aws:iam::123456789012:user/ci\n",
        "secret: projects/acme-prod/secrets/db-password/versions/latest\n",
        "token: read_api,read_repository\n",
        "api_key: AZURE_OPENAI_API_KEY\n",
        "password: sha256:5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\n",
        "password_hash: $argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2g\n",
        "token_url=https://login.acme.io/oauth2/v2.0/token\n",
        "client_secret: ''\n",
        "db.password=\n",
        "password: \"\"\n",
        "secret: true\n",
        "token: null\n",
        "log.mask.password=true\n",
        "[10:02] ops: rotated the api key, the new one is in 1Password under \"billing prod\"\n",
        "2024-06-01 12:00:03 INFO login ok user=svc-etl password=****** token=[REDACTED]\n",
        "auth.token.header=Authorization\n",
        "secret_key: ${{ secrets.SECRET_KEY }}\n",
        "  - name: DB_PASSWORD\n    valueFrom:\n      secretKeyRef: {name: db, key: password}\n",
        "PASSWORD_RESET_TOKEN_TTL=15m\n",
        "password = os.environ[\"DB_PASSWORD\"]  # never hard-code\n",
        "token: \"{{ lookup('env', 'DEPLOY_TOKEN') }}\"\n",
        "api.key=@api.key@\n",
    ];
    for setting in settings {
        set.negative("secret-named setting, no secret", "config", setting.to_string());
    }
}

/// Provider names next to identifiers that have a key's shape: context rules must not take
/// the one for the other.
fn provider_identifier_negatives(set: &mut Builder) {
    for _ in 0..3 {
        let texts = [
            format!(
                "Jun 01 12:00:03 web-1 datadog-agent[812]: INFO | version 7.52.0, commit {}\n",
                set.rng.hex(40)
            ),
            format!("exporters:\n  datadog:\n    trace_id: {}\n", set.rng.hex(32)),
            format!(
                "Postmark MessageID: {}, To: jane@acme.io, SubmittedAt: 2024-06-01T12:00:03Z\n",
                set.rng.uuid()
            ),
            format!("heroku releases:info v142 --app billing  # slug {}\n", set.rng.uuid()),
            format!("\"cloudflare_zone_id\": \"{}\",\n", set.rng.hex(32)),
            format!("snyk monitor --org={} --project-name=api\n", set.rng.uuid()),
            format!(
                "Twilio message {} delivered (account AC{})\n",
                format_args!("SM{}", set.rng.hex(32)),
                set.rng.hex(32)
            ),
            format!("discord user id {} joined #general\n", set.rng.digits(18)),
        ];
        for text in texts {
            set.negative("provider name near an identifier", "log", text);
        }
    }
}

fn url_negatives(set: &mut Builder) {
    let urls = [
        "https://github.com/acme/steward/pull/1234#issuecomment-1987654321",
        "https://hooks.slack.com/",
        "https://discord.com/api/webhooks/",
        "https://acme.webhook.office.com/",
        "https://api.telegram.org/bot/getMe",
        "https://storage.googleapis.com/acme-public/releases/v1.2.3/app.tar.gz",
        "https://user@gitlab.com/acme/infra.git",
        "postgres://app@db.acme.internal:5432/app?sslmode=require",
        "redis://cache.acme.internal:6379/0",
        "amqp://rabbitmq:5672/%2F",
        "mongodb://localhost:27017/test",
        "https://www.youtube.com/watch?v=dQw4w9WgXcQ",
        "https://docs.aws.amazon.com/IAM/latest/UserGuide/id_credentials_access-keys.html",
        "https://acme.blob.core.windows.net/public/logo.png",
        "https://cdn.jsdelivr.net/npm/bootstrap@5.3.3/dist/css/bootstrap.min.css",
    ];
    for url in urls {
        let placed = assignment(
            &mut set.rng,
            &Names {
                env: "SERVICE_URL",
                label: "service URL",
            },
            url,
        );
        set.push("url without credentials", placed, None);
    }
    let placeholders = [
        "postgres://user:password@localhost:5432/mydb",
        "postgresql://postgres:postgres@localhost/postgres",
        "mysql://root:root@127.0.0.1:3306/app",
        "mysql://user:pass@localhost/test",
        "mongodb://admin:admin@localhost:27017",
        "mongodb+srv://<username>:<password>@cluster0.mongodb.net/test",
        "redis://:password@localhost:6379",
        "amqp://guest:guest@localhost:5672/",
        "postgres://app:${DB_PASSWORD}@db:5432/app",
        "postgres://app:{{ db_password }}@db:5432/app",
        "mysql://app:$(MYSQL_PASSWORD)@db/app",
        "postgres://USER:PASSWORD@HOST:PORT/DB",
        "postgresql://myuser:mypassword@localhost/mydatabase",
        "redis://default:changeme@redis:6379",
        "amqp://user:secret@rabbit:5672",
    ];
    for uri in placeholders {
        for _ in 0..2 {
            let placed = assignment(
                &mut set.rng,
                &Names {
                    env: "DATABASE_URL",
                    label: "database URL",
                },
                uri,
            );
            set.push("db uri with placeholder password", placed, None);
        }
    }
}

fn near_miss_negatives(set: &mut Builder) {
    for _ in 0..3 {
        let samples = [
            format!("xoxb-{}", set.rng.digits(6)),
            format!("sk_live_{}", set.rng.alnum(8)),
            format!("sk_test_{}", "x".repeat(24)),
            format!("ghp_{}", set.rng.alnum(10)),
            format!("glpat-{}", set.rng.alnum(8)),
            format!("AKIA{}", set.rng.chars(BASE32, 8)),
            format!("hf_{}", set.rng.chars(LOWER, 6)),
            format!("SG.{}", set.rng.alnum(10)),
            format!("dop_v1_{}", set.rng.hex(16)),
            format!("npm_{}", set.rng.alnum(12)),
        ];
        for sample in samples {
            // Truncated GitHub and npm tokens under a token's name (a bad paste); other
            // prefixes with short bodies under a neutral name, so that the provider rules,
            // not the generic ones, are what this tests.
            let env = if sample.starts_with("ghp_") || sample.starts_with("npm_") {
                "GITHUB_TOKEN"
            } else {
                "KNOWN_PREFIX"
            };
            let placed = assignment(&mut set.rng, &Names { env, label: "prefix" }, &sample);
            set.push("short or truncated", placed, None);
        }
    }
    for _ in 0..10 {
        let text = format!(
            "Logs show a redacted key: {}…{} (last four shown).\n",
            set.rng.pick(&["sk_live_", "ghp_", "xoxb-", "AKIA"]),
            set.rng.alnum(4)
        );
        set.negative("short or truncated", "chat", text);
    }
    for _ in 0..10 {
        let config = [
            format!(
                "region: us-east-1\ninstance_type: m6i.large\nami: ami-{}\n",
                set.rng.hex(17)
            ),
            format!(
                "timeout_seconds = 30\nreplicas = 3\nsubnet_id = \"subnet-{}\"\n",
                set.rng.hex(17)
            ),
            format!(
                "LOG_LEVEL=debug\nPORT=8080\nFEATURE_FLAGS=checkout_v2,fast_search\nBUILD={}\n",
                set.rng.hex(12)
            ),
        ];
        let index = set.rng.range(0, config.len() - 1);
        set.negative("ordinary configuration", "config", config[index].clone());
    }
}
