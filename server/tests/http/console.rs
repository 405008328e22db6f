//! The search console in a real browser (issue 26): headless Chromium driven by chromedriver over
//! the W3C WebDriver protocol (plain HTTP and JSON, spoken here with the test's own reqwest
//! client). It loads the console from the shared server, picks a modified excerpt as the query,
//! and checks that the source is the first hit, that its play button fetches exactly the hit's
//! span, that an API error is shown in the API's words, that a trimmed clip still finds its
//! source, that a recording from a (fake) microphone is searched, that the page fits a phone's
//! width, and that the archive page shows the report and
//! the assets; screenshots go to `target/console-test/`.
//!
//! Needs `chromium` and `chromedriver` (`scripts/setup-browser.sh` installs Debian's); finds them
//! on the PATH or through `CHROME_BIN` and `CHROMEDRIVER`. Without them, or when the browser
//! cannot start, the test says why and skips, unless `PAIRALIGN_REQUIRE_BROWSER=1`, which makes
//! that a failure.

use std::process::{Child, Command, Stdio};

use super::*;

/// The W3C name of the key an element reference is stored under.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Where the screenshots go: `target/console-test/`.
fn output_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("console-test");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The first of `names` on the PATH (or the program `variable` names).
fn program(variable: &str, names: &[&str]) -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(variable) {
        return Some(PathBuf::from(path));
    }
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .flat_map(|dir| names.iter().map(move |name| dir.join(name)))
        .find(|candidate| candidate.is_file())
}

/// Skips the test with `why`, or fails it when the browser is required.
fn skip(why: &str) {
    let message = format!(
        "skipping the console's browser test: {why}. scripts/setup-browser.sh installs \
         chromium and chromedriver (Debian packages)."
    );
    if std::env::var("PAIRALIGN_REQUIRE_BROWSER").is_ok_and(|v| v == "1") {
        panic!("{message} (PAIRALIGN_REQUIRE_BROWSER=1)");
    }
    eprintln!("{message}");
}

/// chromedriver, running until dropped.
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    fn start(program: &Path) -> Result<Driver, String> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map_err(|e| e.to_string())?
            .port();
        let child = Command::new(program)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("{} does not start: {e}", program.display()))?;
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let ready = client()
                .get(format!("{}/status", driver.base))
                .send()
                .ok()
                .and_then(|r| r.json::<Value>().ok())
                .is_some_and(|v| v["value"]["ready"] == true);
            if ready {
                return Ok(driver);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!("{} did not get ready in 20 s", program.display()))
    }

    /// A new headless browser session at 1280x800.
    fn session(&self, chromium: &Path) -> Result<Session, String> {
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": chromium,
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--window-size=1280,800", "--autoplay-policy=no-user-gesture-required",
                    "--no-first-run", "--mute-audio",
                    // A microphone that plays a beep, allowed without asking.
                    "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                ],
            },
        }}});
        let reply = client()
            .post(format!("{}/session", self.base))
            .json(&capabilities)
            .send()
            .map_err(|e| e.to_string())?;
        let status = reply.status();
        let body: Value = reply.json().map_err(|e| e.to_string())?;
        match body["value"]["sessionId"].as_str() {
            Some(id) if status.is_success() => Ok(Session {
                url: format!("{}/session/{id}", self.base),
            }),
            _ => Err(format!(
                "the browser does not start: {}",
                body["value"]["message"]
            )),
        }
    }
}

/// One browser session; closed when dropped.
struct Session {
    url: String,
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = client().delete(&self.url).send();
    }
}

impl Session {
    /// Sends a WebDriver command and returns its `value`; panics with the driver's message when
    /// the command fails.
    fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = client().request(method, format!("{}{path}", self.url));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().unwrap();
        let status = response.status();
        let body: Value = response.json().unwrap();
        assert!(status.is_success(), "WebDriver {path}: {body}");
        body["value"].clone()
    }

    fn post(&self, path: &str, body: Value) -> Value {
        self.command(reqwest::Method::POST, path, Some(body))
    }

    fn go(&self, url: &str) {
        self.post("/url", json!({ "url": url }));
    }

    /// Runs `script` (a function body; `arguments` holds `args`) in the page.
    fn js(&self, script: &str, args: Value) -> Value {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
    }

    /// Polls `script` until it returns something truthy, for at most `seconds`; returns it.
    fn wait_for(&self, what: &str, script: &str, seconds: u64) -> Value {
        let deadline = Instant::now() + Duration::from_secs(seconds);
        loop {
            let value = self.js(script, json!([]));
            let truthy = match &value {
                Value::Null | Value::Bool(false) => false,
                Value::String(s) => !s.is_empty(),
                Value::Number(n) => n.as_f64() != Some(0.0),
                _ => true,
            };
            if truthy {
                return value;
            }
            assert!(
                Instant::now() < deadline,
                "waited {seconds} s for {what}; the page says: {}",
                self.js(
                    "return document.getElementById('search-status').textContent",
                    json!([])
                )
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn find(&self, css: &str) -> String {
        let found = self.post("/element", json!({"using": "css selector", "value": css}));
        found[ELEMENT].as_str().unwrap().to_string()
    }

    fn click(&self, css: &str) {
        let element = self.find(css);
        self.post(&format!("/element/{element}/click"), json!({}));
    }

    /// Replaces the text of the input `css` with `text` by typing it.
    fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css);
        self.post(&format!("/element/{element}/clear"), json!({}));
        self.post(
            &format!("/element/{element}/value"),
            json!({ "text": text }),
        );
    }

    /// Presses and releases Enter on whatever has the focus.
    fn press_enter(&self) {
        let enter = "\u{E007}";
        self.post(
            "/actions",
            json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                {"type": "keyDown", "value": enter}, {"type": "keyUp", "value": enter},
            ]}]}),
        );
    }

    /// Sizes the window so that the page's viewport is `width` x `height` CSS pixels (the
    /// window's own size counts the browser's frame too).
    fn resize(&self, width: i64, height: i64) {
        self.post("/window/rect", json!({"width": width, "height": height}));
        let inner = self.js("return [window.innerWidth, window.innerHeight]", json!([]));
        let (w, h) = (inner[0].as_i64().unwrap(), inner[1].as_i64().unwrap());
        self.post(
            "/window/rect",
            json!({"width": 2 * width - w, "height": 2 * height - h}),
        );
    }

    /// Saves a PNG of the viewport as `name` in the output folder.
    fn screenshot(&self, name: &str) -> PathBuf {
        let encoded = self.command(reqwest::Method::GET, "/screenshot", None);
        let png = base64_decode(encoded.as_str().unwrap());
        assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
        let path = output_dir().join(name);
        std::fs::write(&path, png).unwrap();
        path
    }
}

/// Standard base64 (RFC 4648 section 4), as WebDriver sends screenshots.
fn base64_decode(text: &str) -> Vec<u8> {
    let value = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => u32::from(c - b'A'),
            b'a'..=b'z' => u32::from(c - b'a') + 26,
            b'0'..=b'9' => u32::from(c - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            _ => panic!("not base64: {c}"),
        }
    };
    let digits: Vec<u8> = text
        .bytes()
        .filter(|c| !c.is_ascii_whitespace() && *c != b'=')
        .collect();
    let mut out = Vec::with_capacity(digits.len() * 3 / 4);
    for group in digits.chunks(4) {
        let n = group
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, &c)| n | value(c) << (18 - 6 * i));
        let bytes = n.to_be_bytes();
        out.extend_from_slice(&bytes[1..group.len()]);
    }
    out
}

#[test]
fn base64_decodes_the_rfc_4648_test_vectors() {
    for (encoded, plain) in [
        ("", ""),
        ("Zg==", "f"),
        ("Zm8=", "fo"),
        ("Zm9v", "foo"),
        ("Zm9vYg==", "foob"),
        ("Zm9vYmE=", "fooba"),
        ("Zm9vYmFy", "foobar"),
    ] {
        assert_eq!(base64_decode(encoded), plain.as_bytes(), "{encoded}");
    }
}

/// Issue 26: the console in headless Chromium finds the source of a modified excerpt first, and
/// its play button asks the server for exactly the hit's span.
#[test]
fn the_console_finds_an_excerpt_and_plays_the_hit_span() {
    let Some(chromedriver) = program("CHROMEDRIVER", &["chromedriver"]) else {
        return skip("chromedriver is not installed");
    };
    let Some(chromium) = program(
        "CHROME_BIN",
        &[
            "chromium",
            "chromium-browser",
            "google-chrome",
            "google-chrome-stable",
        ],
    ) else {
        return skip("chromium is not installed");
    };
    let driver = match Driver::start(&chromedriver) {
        Ok(driver) => driver,
        Err(why) => return skip(&why),
    };
    let browser = match driver.session(&chromium) {
        Ok(session) => session,
        Err(why) => return skip(&why),
    };
    let server = shared();

    // The query: 3 s of a long sample from 12.5 s, with noise, 5 % faster, 6 dB softer.
    let source = samples().join("long/long_flite_slt.flac");
    let clip = wav_bytes(&modified_excerpt(&source, 12.5));
    let query = output_dir().join("query.wav");
    std::fs::write(&query, &clip).unwrap();
    let expected = search_wav(server, clip, "?top=5");

    browser.go(&server.url("/"));
    browser.resize(1280, 800);
    browser.wait_for(
        "the console's script",
        "return document.getElementById('nav-search').getAttribute('aria-current') === 'page'",
        20,
    );
    let file_input = browser.find("#clip-file");
    browser.post(
        &format!("/element/{file_input}/value"),
        json!({ "text": query.to_str().unwrap() }),
    );
    browser.wait_for(
        "the clip to load",
        "return !document.getElementById('search-button').disabled \
         && !document.getElementById('clip-panel').hidden",
        20,
    );
    browser.type_into("#top", "5");
    browser.click("#search-button");
    browser.wait_for(
        "the hits",
        "return document.querySelectorAll('#hits li.hit').length > 0 \
         || document.querySelector('#search-status.error') !== null",
        120,
    );
    let first = browser.js(
        "const li = document.querySelector('#hits li.hit'); \
         return li && { id: li.dataset.id, start: Number(li.dataset.startMs), \
                        end: Number(li.dataset.endMs), \
                        name: li.querySelector('.name').textContent, \
                        hits: document.querySelectorAll('#hits li.hit').length };",
        json!([]),
    );
    let id = doc_id(&source);
    assert_eq!(first["id"], id.as_str(), "{first}");
    assert_eq!(first["name"], "long_flite_slt.flac", "{first}");
    assert_eq!(first["hits"], expected.len(), "{first}");
    assert_eq!(first["start"], expected[0]["start_ms"], "{first}");
    assert_eq!(first["end"], expected[0]["end_ms"], "{first}");

    // From the keyboard: after a search the focus is on the first hit's play button, and Enter
    // plays it.
    let focused = browser.js(
        "return document.activeElement === document.querySelector('#hits li.hit button.play')",
        json!([]),
    );
    assert_eq!(focused, true, "the first play button has the focus");
    browser.press_enter();
    let requested = browser.wait_for(
        "the span's audio",
        "const player = document.getElementById('player'); \
         const spans = performance.getEntriesByType('resource') \
           .filter((e) => e.name.includes('/audio?')); \
         return spans.length > 0 && player.src.startsWith('blob:') && player.readyState >= 1 \
           && { url: spans[0].name, status: spans[0].responseStatus ?? null, \
                duration: player.duration, error: player.error && player.error.message, \
                shown: document.querySelector('#hits li.hit .hit-error').textContent };",
        30,
    );
    let (start, end) = (
        expected[0]["start_ms"].as_u64().unwrap(),
        expected[0]["end_ms"].as_u64().unwrap(),
    );
    let wanted = server.url(&format!(
        "/v1/assets/{}/audio?start_ms={start}&end_ms={end}",
        segment(&id)
    ));
    assert_eq!(requested["url"], wanted.as_str(), "{requested}");
    assert!(
        requested["status"].is_null() || requested["status"] == 200,
        "{requested}"
    );
    assert_eq!(requested["error"], Value::Null, "{requested}");
    assert_eq!(requested["shown"], "", "{requested}");
    let seconds = requested["duration"].as_f64().unwrap();
    assert!(
        (seconds - (end - start) as f64 / 1000.0).abs() < 0.05,
        "{requested}"
    );
    let shot = browser.screenshot("search-1280x800.png");
    eprintln!("console screenshot: {}", shot.display());

    // At a phone's width nothing sticks out sideways.
    browser.resize(390, 844);
    let overflow = browser.js(
        "return document.documentElement.scrollWidth - document.documentElement.clientWidth",
        json!([]),
    );
    assert!(overflow.as_i64().unwrap() <= 0, "{overflow} px too wide");
    browser.screenshot("search-phone.png");
    browser.resize(1280, 800);

    // An error is shown as the API words it.
    let bad = "duration:>";
    let reply = client()
        .post(server.url(&format!("/v1/search?filter={}", segment(bad))))
        .header("content-type", "audio/wav")
        .body(std::fs::read(&query).unwrap())
        .send()
        .unwrap();
    let message = expect(reply, StatusCode::BAD_REQUEST)["error"]["message"]
        .as_str()
        .unwrap()
        .to_string();
    browser.type_into("#filter", bad);
    browser.click("#search-button");
    let shown = browser.wait_for(
        "the error",
        "const e = document.querySelector('#search-status.error'); return e && e.textContent",
        120,
    );
    assert!(
        shown.as_str().unwrap().starts_with(&message),
        "{shown} / {message}"
    );

    // A trimmed clip (typed times, as a keyboard user sets them) is sent as the selection,
    // resampled and written as WAV by the page, and still finds its source first.
    browser.type_into("#filter", "");
    browser.type_into("#trim-start", "0.3");
    browser.type_into("#trim-end", "2.6");
    browser.js(
        "document.querySelectorAll('#hits li.hit').forEach((li) => li.remove())",
        json!([]),
    );
    browser.click("#search-button");
    let trimmed = browser.wait_for(
        "the hits of the trimmed clip",
        "const li = document.querySelector('#hits li.hit'); \
         return li && { id: li.dataset.id, start: Number(li.dataset.startMs), \
                        from: document.getElementById('trim-start').value, \
                        to: document.getElementById('trim-end').value };",
        120,
    );
    assert_eq!(trimmed["id"], id.as_str(), "{trimmed}");
    assert_eq!(
        (trimmed["from"].as_str(), trimmed["to"].as_str()),
        (Some("0.30"), Some("2.60"))
    );
    let start = trimmed["start"].as_f64().unwrap();
    assert!((start - 12_800.0).abs() <= 400.0, "{trimmed}");

    // Recording from the (fake) microphone: MediaRecorder's WebM, which the server does not
    // read, is decoded by the browser and sent as WAV; the search answers.
    browser.click("#record");
    browser.wait_for(
        "the recording to start",
        "return document.getElementById('record').getAttribute('aria-pressed') === 'true'",
        10,
    );
    std::thread::sleep(Duration::from_millis(1500));
    browser.click("#record");
    browser.wait_for(
        "the recording to load",
        "return document.getElementById('clip-info').textContent.startsWith('recording, ')",
        20,
    );
    browser.click("#search-button");
    let answered = browser.wait_for(
        "the search of the recording",
        "const s = document.getElementById('search-status'); \
         return (/ hits? for /.test(s.textContent) || s.classList.contains('error')) \
           && { text: s.textContent, error: s.classList.contains('error') };",
        120,
    );
    assert_eq!(answered["error"], false, "{answered}");

    // The archive page: the report, the plot and the first page of assets.
    browser.go(&server.url("/#archive"));
    let rows = browser.wait_for(
        "the archive page",
        "return document.querySelectorAll('#report dd').length > 0 \
         && document.querySelectorAll('#plot rect').length > 0 \
         && document.querySelectorAll('#assets tbody tr').length",
        30,
    );
    assert!(rows.as_u64().unwrap() >= 4, "{rows}");
    browser.screenshot("archive-1280x800.png");
}
