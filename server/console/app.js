// The search console: query by example (a file, a drop or the microphone, optionally trimmed on
// its waveform), the hits with their spans to listen to, and the archive page (the report, the
// assets, uploads). It talks to the server's own HTTP API, same origin, with the bearer token
// when one is given. Everything from the server is put in the page as text (textContent), never
// as markup.

const $ = (id) => document.getElementById(id);

/** Samples per second of what the server searches and plays (pairalign_datasets::SAMPLE_RATE). */
const RATE = 16000;
/** The server searches clips of 0.5 to 60 s. */
const MAX_CLIP_S = 60;
/** Assets per page on the archive page. */
const PAGE = 20;

const state = {
  /** The query clip: {name, bytes, type, buffer (AudioBuffer or null), encode (must be sent as WAV)}. */
  clip: null,
  /** The selected part of the clip, [start, end] in seconds. */
  selection: null,
  /** Playback of the selection. */
  preview: null,
  /** The hit being played: {li, hit, duration}. */
  playing: null,
  objectUrl: null,
  recorder: null,
  assetsOffset: 0,
  assetsFilter: '',
  audioContext: null,
};

// ---------------------------------------------------------------- the API

/** An error reply of the API, or no reply at all (status 0). */
class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function token() {
  return $('token').value.trim();
}

/** fetch() with the token; resolves to the response when it is a success, else throws ApiError
 * with the API's own code and message. */
async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  if (token()) headers.set('Authorization', `Bearer ${token()}`);
  let response;
  try {
    response = await fetch(path, { ...options, headers });
  } catch (e) {
    throw new ApiError(0, 'no_reply', `The server did not answer (${e.message}).`);
  }
  if (response.ok) return response;
  let code = `http_${response.status}`;
  let message = `${response.status} ${response.statusText}`;
  try {
    const body = await response.json();
    if (body && body.error) {
      code = body.error.code;
      message = body.error.message;
    }
  } catch (_) {
    // Not the API's JSON error body: keep the status line.
  }
  throw new ApiError(response.status, code, message);
}

async function apiJson(path, options) {
  return (await api(path, options)).json();
}

function assetPath(id) {
  return `/v1/assets/${encodeURIComponent(id)}`;
}

/** Shows `text` in the status line `el`; an error shows the API's message and code. */
function say(el, text, kind = '') {
  el.textContent = '';
  el.className = `status ${kind}`;
  if (text instanceof ApiError) {
    el.className = 'status error';
    el.append(text.message);
    const code = document.createElement('span');
    code.className = 'code';
    code.textContent = text.status ? ` (${text.code}, HTTP ${text.status})` : ` (${text.code})`;
    el.append(code);
    if (text.status === 401) $('token').focus();
  } else if (text instanceof Error) {
    el.className = 'status error';
    el.textContent = text.message;
  } else {
    el.textContent = text;
  }
}

// ---------------------------------------------------------------- formatting

function clock(ms) {
  const total = Math.max(0, ms) / 1000;
  const m = Math.floor(total / 60);
  const s = total - 60 * m;
  return `${m}:${s.toFixed(2).padStart(5, '0')}`;
}

function seconds(s) {
  if (s >= 3600) return `${(s / 3600).toFixed(2)} h`;
  if (s >= 60) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${s.toFixed(1)} s`;
}

function bytes(n) {
  const units = ['B', 'kB', 'MB', 'GB', 'TB'];
  let i = 0;
  while (n >= 1000 && i < units.length - 1) {
    n /= 1000;
    i += 1;
  }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`;
}

function count(n, digits = 0) {
  return Number(n).toLocaleString('en', { maximumFractionDigits: digits });
}

function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

// ---------------------------------------------------------------- pages

/** Shows the page the fragment names; after a switch, from its top with the focus on it. */
function route(event) {
  const archive = location.hash === '#archive';
  $('search-view').hidden = archive;
  $('archive-view').hidden = !archive;
  for (const [link, current] of [[$('nav-search'), !archive], [$('nav-archive'), archive]]) {
    if (current) link.setAttribute('aria-current', 'page');
    else link.removeAttribute('aria-current');
  }
  if (event) {
    window.scrollTo(0, 0);
    $('main').focus({ preventScroll: true });
  }
  if (archive) loadArchive();
}

// ---------------------------------------------------------------- the query clip

function audioContext() {
  if (!state.audioContext) state.audioContext = new AudioContext();
  return state.audioContext;
}

/** Takes `blob` as the query. The browser decodes it for the waveform and the trim; when it
 * cannot (a format only the server reads), the file is sent as it is. `encode`: the server
 * cannot read the blob itself (a microphone recording), so it is always sent as WAV. */
async function loadClip(blob, name, encode) {
  stopPreview();
  const bytes = await blob.arrayBuffer();
  let buffer = null;
  try {
    buffer = await audioContext().decodeAudioData(bytes.slice(0));
  } catch (_) {
    buffer = null;
  }
  if (!buffer && encode) {
    say($('search-status'), new Error('The browser could not decode the recording.'));
    return;
  }
  state.clip = { name, bytes, type: blob.type, buffer, encode };
  state.selection = buffer ? [0, buffer.duration] : null;
  $('clip-panel').hidden = !buffer;
  $('search-button').disabled = false;
  let info = buffer ? `${name}, ${seconds(buffer.duration)}` : name;
  if (!buffer) info += ' (no preview: the browser cannot decode this format; the server will)';
  else if (buffer.duration > MAX_CLIP_S) {
    info += `: the server searches clips of 0.5 to ${MAX_CLIP_S} s; select a part on the waveform`;
  }
  $('clip-info').textContent = info;
  say($('search-status'), '');
  if (buffer) {
    syncTrimInputs();
    drawWave();
  }
}

/** Peaks of `buffer` (mean of the channels) for `columns` columns: [min, max] each. */
function peaks(buffer, columns) {
  const channels = [];
  for (let c = 0; c < buffer.numberOfChannels; c += 1) channels.push(buffer.getChannelData(c));
  const n = buffer.length;
  const out = [];
  for (let x = 0; x < columns; x += 1) {
    const from = Math.floor((x * n) / columns);
    const to = Math.max(from + 1, Math.floor(((x + 1) * n) / columns));
    let lo = 0;
    let hi = 0;
    const step = Math.max(1, Math.floor((to - from) / 512));
    for (let i = from; i < to && i < n; i += step) {
      let v = 0;
      for (const ch of channels) v += ch[i];
      v /= channels.length;
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    out.push([lo, hi]);
  }
  return out;
}

function drawWave() {
  const canvas = $('clip-wave');
  const buffer = state.clip && state.clip.buffer;
  if (!buffer) return;
  const ratio = window.devicePixelRatio || 1;
  const width = Math.max(100, Math.floor(canvas.clientWidth * ratio));
  const height = Math.floor(96 * ratio);
  canvas.width = width;
  canvas.height = height;
  const g = canvas.getContext('2d');
  const style = getComputedStyle(document.documentElement);
  const wave = style.getPropertyValue('--wave').trim() || '#2b6cb0';
  const shade = style.getPropertyValue('--shade').trim() || 'rgba(0,0,0,0.35)';
  g.clearRect(0, 0, width, height);
  g.fillStyle = wave;
  const mid = height / 2;
  const columns = peaks(buffer, width);
  // Scaled to the loudest peak, so that a quiet clip is seen as well as a loud one.
  const loudest = Math.max(1e-4, ...columns.map(([lo, hi]) => Math.max(-lo, hi)));
  const scale = (0.95 * mid) / loudest;
  columns.forEach(([lo, hi], x) => {
    g.fillRect(x, mid - hi * scale, 1, Math.max(1, (hi - lo) * scale));
  });
  const [a, b] = state.selection;
  const xa = (a / buffer.duration) * width;
  const xb = (b / buffer.duration) * width;
  g.fillStyle = shade;
  g.fillRect(0, 0, xa, height);
  g.fillRect(xb, 0, width - xb, height);
}

function syncTrimInputs() {
  const [a, b] = state.selection;
  const max = state.clip.buffer.duration.toFixed(2);
  for (const id of ['trim-start', 'trim-end']) $(id).max = max;
  $('trim-start').value = a.toFixed(2);
  $('trim-end').value = b.toFixed(2);
}

function setSelection(a, b) {
  const duration = state.clip.buffer.duration;
  a = Math.min(Math.max(0, a), duration);
  b = Math.min(Math.max(0, b), duration);
  if (b < a) [a, b] = [b, a];
  if (b - a < 0.05) return;
  state.selection = [a, b];
  syncTrimInputs();
  drawWave();
}

function setupTrim() {
  const canvas = $('clip-wave');
  let from = null;
  const at = (event) => {
    const box = canvas.getBoundingClientRect();
    return ((event.clientX - box.left) / box.width) * state.clip.buffer.duration;
  };
  canvas.addEventListener('pointerdown', (event) => {
    if (!state.clip || !state.clip.buffer) return;
    from = at(event);
    canvas.setPointerCapture(event.pointerId);
  });
  canvas.addEventListener('pointermove', (event) => {
    if (from !== null) setSelection(from, at(event));
  });
  const end = (event) => {
    if (from !== null) setSelection(from, at(event));
    from = null;
  };
  canvas.addEventListener('pointerup', end);
  canvas.addEventListener('pointercancel', () => {
    from = null;
  });
  const typed = () => {
    const a = parseFloat($('trim-start').value);
    const b = parseFloat($('trim-end').value);
    if (Number.isFinite(a) && Number.isFinite(b)) setSelection(a, b);
  };
  $('trim-start').addEventListener('change', typed);
  $('trim-end').addEventListener('change', typed);
  $('trim-reset').addEventListener('click', () => {
    if (state.clip && state.clip.buffer) setSelection(0, state.clip.buffer.duration);
  });
  $('clip-play').addEventListener('click', () => {
    if (state.preview) {
      stopPreview();
      return;
    }
    const [a, b] = state.selection;
    const context = audioContext();
    const source = context.createBufferSource();
    source.buffer = state.clip.buffer;
    source.connect(context.destination);
    source.onended = stopPreview;
    context.resume();
    source.start(0, a, b - a);
    state.preview = source;
    $('clip-play').textContent = 'Stop';
  });
  window.addEventListener('resize', drawWave);
}

function stopPreview() {
  if (state.preview) {
    const source = state.preview;
    state.preview = null;
    source.onended = null;
    try {
      source.stop();
    } catch (_) {
      // Already ended.
    }
  }
  $('clip-play').textContent = 'Play selection';
}

/** The selected part of `buffer` as 16 kHz mono samples (the browser resamples and downmixes). */
async function render16k(buffer, from, to) {
  const length = Math.max(1, Math.round((to - from) * RATE));
  const context = new OfflineAudioContext(1, length, RATE);
  const source = context.createBufferSource();
  source.buffer = buffer;
  source.connect(context.destination);
  source.start(0, from, to - from);
  const rendered = await context.startRendering();
  return rendered.getChannelData(0);
}

/** `samples` (mono, [-1, 1]) as a 16-bit PCM WAV file. */
function wavFile(samples, rate) {
  const out = new DataView(new ArrayBuffer(44 + 2 * samples.length));
  const text = (at, s) => [...s].forEach((c, i) => out.setUint8(at + i, c.charCodeAt(0)));
  text(0, 'RIFF');
  out.setUint32(4, 36 + 2 * samples.length, true);
  text(8, 'WAVEfmt ');
  out.setUint32(16, 16, true);
  out.setUint16(20, 1, true);
  out.setUint16(22, 1, true);
  out.setUint32(24, rate, true);
  out.setUint32(28, 2 * rate, true);
  out.setUint16(32, 2, true);
  out.setUint16(34, 16, true);
  text(36, 'data');
  out.setUint32(40, 2 * samples.length, true);
  samples.forEach((s, i) => {
    out.setInt16(44 + 2 * i, Math.round(Math.max(-1, Math.min(1, s)) * 32767), true);
  });
  return out.buffer;
}

/** What to send: the file as it is when it is searched whole, else the selection as WAV. */
async function clipBody() {
  const clip = state.clip;
  const buffer = clip.buffer;
  const whole =
    !buffer || (state.selection[0] <= 0.005 && state.selection[1] >= buffer.duration - 0.005);
  if (whole && !clip.encode) {
    return { blob: new Blob([clip.bytes], { type: clip.type || 'application/octet-stream' }), name: clip.name };
  }
  const [a, b] = state.selection;
  const samples = await render16k(buffer, a, b);
  const stem = clip.name.replace(/\.[^.]*$/, '');
  return { blob: new Blob([wavFile(samples, RATE)], { type: 'audio/wav' }), name: `${stem}.wav` };
}

async function toggleRecord() {
  const button = $('record');
  if (state.recorder) {
    state.recorder.stop();
    return;
  }
  if (!navigator.mediaDevices || !window.MediaRecorder) {
    say($('search-status'), new Error(
      'Recording needs the microphone API, which browsers give only to pages served over https or from localhost.'));
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true });
  } catch (e) {
    say($('search-status'), new Error(`The microphone is not available: ${e.message}`));
    return;
  }
  const chunks = [];
  const recorder = new MediaRecorder(stream);
  const started = Date.now();
  const tick = setInterval(() => {
    const s = (Date.now() - started) / 1000;
    say($('search-status'), `Recording: ${s.toFixed(0)} s (stops at ${MAX_CLIP_S} s)`);
    if (s >= MAX_CLIP_S) recorder.stop();
  }, 250);
  recorder.ondataavailable = (event) => chunks.push(event.data);
  recorder.onstop = async () => {
    clearInterval(tick);
    stream.getTracks().forEach((t) => t.stop());
    state.recorder = null;
    button.textContent = 'Record';
    button.setAttribute('aria-pressed', 'false');
    await loadClip(new Blob(chunks, { type: recorder.mimeType }), 'recording', true);
  };
  state.recorder = recorder;
  recorder.start();
  button.textContent = 'Stop recording';
  button.setAttribute('aria-pressed', 'true');
}

function setupClip() {
  $('clip-file').addEventListener('change', () => {
    const file = $('clip-file').files[0];
    if (file) loadClip(file, file.name, false);
  });
  const drop = $('drop');
  drop.addEventListener('dragover', (event) => {
    event.preventDefault();
    drop.classList.add('over');
  });
  drop.addEventListener('dragleave', () => drop.classList.remove('over'));
  drop.addEventListener('drop', (event) => {
    event.preventDefault();
    drop.classList.remove('over');
    const file = event.dataTransfer.files[0];
    if (file) loadClip(file, file.name, false);
  });
  $('record').addEventListener('click', toggleRecord);
  setupTrim();
}

// ---------------------------------------------------------------- search and hits

/** A number when `text` is an integer, else the text as typed: the API takes a fraction of the
 * query as a string (`"0.9"`), and words the error for anything else. */
function option(text) {
  const t = text.trim();
  return /^\d+$/.test(t) ? Number(t) : t;
}

async function search(event) {
  event.preventDefault();
  if (!state.clip) return;
  const status = $('search-status');
  const button = $('search-button');
  button.disabled = true;
  say(status, 'Searching…');
  try {
    const body = await clipBody();
    const options = {};
    if ($('top').value.trim()) options.top = option($('top').value);
    if ($('k').value.trim()) options.k = option($('k').value);
    if ($('filter').value.trim()) options.filter = $('filter').value.trim();
    const form = new FormData();
    form.append('file', body.blob, body.name);
    form.append('options', new Blob([JSON.stringify(options)], { type: 'application/json' }));
    const results = await apiJson('/v1/search', { method: 'POST', body: form });
    const ids = [...new Set(results.hits.map((h) => h.id))];
    const assets = new Map(
      await Promise.all(ids.map(async (id) => [id, await apiJson(assetPath(id)).catch(() => null)])),
    );
    showHits(results, assets);
    const n = results.hits.length;
    say(status, `${n} hit${n === 1 ? '' : 's'} for ${results.query_tokens} query tokens ` +
      `(k ${results.k ?? 'unbounded'}${results.lossless ? ', exhaustive' : ''}; ` +
      `tokenized in ${Math.round(results.tokenize_ms ?? 0)} ms, searched in ${Math.round(results.search_ms)} ms)`);
    if (n > 0) $('hits').querySelector('button.play').focus();
  } catch (e) {
    say(status, e);
  } finally {
    button.disabled = false;
  }
}

function showHits(results, assets) {
  const list = $('hits');
  list.textContent = '';
  results.hits.forEach((hit) => {
    const asset = assets.get(hit.id);
    const duration = asset ? asset.duration_s * 1000 : hit.end_ms;
    const name = (asset && asset.file_name) || hit.id.split('/').pop();
    const li = el('li', 'hit');
    li.dataset.id = hit.id;
    li.dataset.startMs = hit.start_ms;
    li.dataset.endMs = hit.end_ms;

    const head = el('div', 'hit-head');
    head.append(el('span', 'name', name));
    if (asset && asset.title) head.append(el('span', 'title', asset.title));
    if (asset && asset.tags.length) {
      const tags = el('ul', 'tags');
      tags.setAttribute('aria-label', 'tags');
      asset.tags.forEach((t) => tags.append(el('li', '', t)));
      head.append(tags);
    }
    li.append(head);
    li.append(el('div', 'hit-id', hit.id));

    const meta = el('div', 'hit-meta');
    meta.append(el('span', 'when', `${clock(hit.start_ms)}–${clock(hit.end_ms)}`));
    meta.append(el('span', 'distance', `distance ${hit.distance} (${hit.norm_distance.toFixed(2)})`));
    if (asset) meta.append(el('span', 'muted', `of ${seconds(asset.duration_s)}`));
    li.append(meta);

    const row = el('div', 'hit-row');
    const play = el('button', 'play', 'Play');
    play.type = 'button';
    play.setAttribute('aria-label', `Play ${clock(hit.start_ms)} to ${clock(hit.end_ms)} of ${name}`);
    play.addEventListener('click', () => playHit(li, hit, duration));
    row.append(play);
    const line = el('div', 'timeline');
    line.setAttribute('role', 'img');
    line.setAttribute('aria-label',
      `the hit spans ${clock(hit.start_ms)} to ${clock(hit.end_ms)} of ${clock(duration)}`);
    const span = el('div', 'span');
    span.style.left = `${(100 * hit.start_ms) / duration}%`;
    span.style.width = `${Math.max(0.5, (100 * (hit.end_ms - hit.start_ms)) / duration)}%`;
    const playhead = el('div', 'playhead');
    playhead.hidden = true;
    line.append(span, playhead);
    row.append(line);
    li.append(row);
    li.append(el('p', 'hit-error status error'));
    list.append(li);
  });
}

/** Plays exactly the hit's span: fetched from the server as WAV (with the token, which an
 * <audio> element could not send), then played from memory. */
async function playHit(li, hit, duration) {
  const player = $('player');
  if (state.playing && state.playing.li === li && !player.paused) {
    player.pause();
    return;
  }
  const error = li.querySelector('.hit-error');
  error.textContent = '';
  const url = `${assetPath(hit.id)}/audio?start_ms=${hit.start_ms}&end_ms=${hit.end_ms}`;
  try {
    const blob = await (await api(url)).blob();
    if (state.objectUrl) URL.revokeObjectURL(state.objectUrl);
    state.objectUrl = URL.createObjectURL(blob);
    if (state.playing) state.playing.li.classList.remove('playing');
    state.playing = { li, hit, duration };
    li.classList.add('playing');
    player.src = state.objectUrl;
    $('player-bar').hidden = false;
    $('now-playing').textContent =
      `${li.querySelector('.name').textContent}  ${clock(hit.start_ms)}–${clock(hit.end_ms)}`;
    await player.play();
  } catch (e) {
    say(error, e instanceof ApiError ? e : new Error(`The browser would not play it: ${e.message}`));
  }
}

function setupPlayer() {
  const player = $('player');
  const move = () => {
    const p = state.playing;
    if (!p) return;
    const head = p.li.querySelector('.playhead');
    head.hidden = false;
    head.style.left = `${(100 * (p.hit.start_ms + player.currentTime * 1000)) / p.duration}%`;
  };
  player.addEventListener('timeupdate', move);
  player.addEventListener('play', () => {
    if (state.playing) state.playing.li.querySelector('.play').textContent = 'Pause';
  });
  const stopped = () => {
    if (state.playing) state.playing.li.querySelector('.play').textContent = 'Play';
  };
  player.addEventListener('pause', stopped);
  player.addEventListener('ended', stopped);
  document.addEventListener('keydown', (event) => {
    if (event.key === 'Escape') {
      player.pause();
      stopPreview();
    }
  });
}

// ---------------------------------------------------------------- the archive page

async function loadArchive() {
  const status = $('archive-status');
  say(status, 'Loading…');
  try {
    const stats = await apiJson('/v1/stats');
    showReport(stats);
    showPlot(stats);
    showStorage(stats);
    say(status, '');
  } catch (e) {
    say(status, e);
  }
  loadAssets();
}

function showReport(stats) {
  const report = $('report');
  report.textContent = '';
  const rows = [
    ['Recordings', count(stats.docs)],
    ['Audio', `${count(stats.hours, 2)} h`],
    ['Tokens', count(stats.tokens)],
    ['Tokens per second', count(stats.tokens_per_s, 1)],
    ['On disk', bytes(stats.bytes)],
    ['Bytes per hour of audio', bytes(stats.bytes_per_hour)],
    ['Tokenizer', stats.tokenizer ? stats.tokenizer.id : 'none yet'],
    ['Against VQ', stats.versus
      ? `${stats.versus.reduction_percent.toFixed(1)} % fewer tokens than ${stats.versus.tokenizer}`
      : 'not measured here (pairalign report --vs vq measures it)'],
    ['Writes queued', count(stats.writer_queue)],
  ];
  for (const [name, value] of rows) {
    report.append(el('dt', '', name), el('dd', '', value));
  }
}

/** The SVG namespace (a name, not a location: nothing is fetched from it). */
const SVG = 'http://www.w3.org/2000/svg';

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attributes)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
}

/** Tokens and kilobytes per hour, for the archive and, when measured, the other tokenizer: the
 * chart `pairalign report --plot` draws (pairalign_indexer::svg). */
function showPlot(stats) {
  const plot = $('plot');
  plot.textContent = '';
  const name = stats.tokenizer ? stats.tokenizer.id : 'archive';
  const groups = [
    ['tokens per hour', [[name, stats.tokens_per_s * 3600]]],
    ['kB on disk per hour', [[name, stats.bytes_per_hour / 1000]]],
  ];
  if (stats.versus) {
    groups[0][1].push([stats.versus.tokenizer, stats.versus.other_tokens_per_s * 3600]);
    groups[1][1].push([stats.versus.tokenizer, stats.versus.other_bytes_per_hour / 1000]);
  }
  const top = 40;
  const plotHeight = 200;
  groups.forEach(([label, bars], g) => {
    const max = Math.max(1e-9, ...bars.map((b) => b[1]));
    const x0 = 40 + g * 320;
    bars.forEach(([bar, value], i) => {
      const h = stats.docs ? (plotHeight * value) / max : 0;
      const x = x0 + i * 120;
      const y = top + plotHeight - h;
      plot.append(svg('rect', { x, y, width: 90, height: h, class: `bar bar${i}` }));
      plot.append(svg('text', { x: x + 45, y: y - 6, 'text-anchor': 'middle' }, count(value)));
      plot.append(svg('text', { x: x + 45, y: top + plotHeight + 18, 'text-anchor': 'middle', class: 'small' }, bar));
    });
    plot.append(svg('text', { x: x0, y: top + plotHeight + 44, class: 'label' }, label));
  });
  $('plot-caption').textContent = stats.versus
    ? `${count(stats.hours, 1)} h of audio: ${stats.versus.reduction_percent.toFixed(1)} % fewer tokens than ${stats.versus.tokenizer}`
    : `${count(stats.hours, 1)} h of audio, ${count(stats.docs)} recordings`;
}

function showStorage(stats) {
  const storage = $('storage');
  storage.textContent = '';
  const parts = Object.entries(stats.storage || {});
  const total = Math.max(1, parts.reduce((sum, [, n]) => sum + n, 0));
  const bar = el('div', 'stack');
  bar.setAttribute('role', 'img');
  bar.setAttribute('aria-label', parts.map(([k, n]) => `${k} ${bytes(n)}`).join(', '));
  const legend = el('ul', 'legend');
  parts.forEach(([kind, n], i) => {
    const piece = el('div', `piece c${i}`);
    piece.style.width = `${(100 * n) / total}%`;
    bar.append(piece);
    const item = el('li', '');
    item.append(el('span', `swatch c${i}`), `${kind}: ${bytes(n)} (${((100 * n) / total).toFixed(1)} %)`);
    legend.append(item);
  });
  storage.append(bar, legend);
}

async function loadAssets() {
  const status = $('archive-status');
  const query = new URLSearchParams({ offset: state.assetsOffset, limit: PAGE });
  if (state.assetsFilter) query.set('filter', state.assetsFilter);
  try {
    const page = await apiJson(`/v1/assets?${query}`);
    const body = $('assets').querySelector('tbody');
    body.textContent = '';
    for (const asset of page.assets) {
      const row = el('tr', '');
      const file = el('td', 'file', asset.file_name || asset.id);
      file.title = asset.id;
      row.append(
        file,
        el('td', '', asset.title || ''),
        el('td', '', asset.tags.join(', ')),
        el('td', 'num', seconds(asset.duration_s)),
        el('td', 'num', count(asset.tokens)),
        el('td', '', asset.indexed_at.replace('T', ' ').replace('Z', ' UTC')),
      );
      body.append(row);
    }
    const first = page.total ? page.offset + 1 : 0;
    const last = page.offset + page.assets.length;
    $('assets-page').textContent = `${count(first)}–${count(last)} of ${count(page.total)}`;
    $('assets-prev').disabled = page.offset === 0;
    $('assets-next').disabled = last >= page.total;
  } catch (e) {
    say(status, e);
  }
}

function setupArchive() {
  $('assets-form').addEventListener('submit', (event) => {
    event.preventDefault();
    state.assetsFilter = $('assets-filter').value.trim();
    state.assetsOffset = 0;
    loadAssets();
  });
  $('assets-prev').addEventListener('click', () => {
    state.assetsOffset = Math.max(0, state.assetsOffset - PAGE);
    loadAssets();
  });
  $('assets-next').addEventListener('click', () => {
    state.assetsOffset += PAGE;
    loadAssets();
  });
  $('upload-form').addEventListener('submit', upload);
}

/** Adds a recording: committed at once (201) or queued as a job (202) that is followed here. */
async function upload(event) {
  event.preventDefault();
  const status = $('upload-status');
  const file = $('upload-file').files[0];
  if (!file) return;
  const metadata = { file_name: file.name };
  const title = $('upload-title').value.trim();
  if (title) metadata.title = title;
  const tags = $('upload-tags').value.split(',').map((t) => t.trim()).filter((t) => t);
  if (tags.length) metadata.tags = tags;
  const form = new FormData();
  form.append('file', file, file.name);
  form.append('metadata', new Blob([JSON.stringify(metadata)], { type: 'application/json' }));
  say(status, `Uploading ${file.name}…`);
  try {
    const response = await api('/v1/assets', { method: 'POST', body: form });
    let reply = await response.json();
    if (response.status === 202) {
      say(status, `${file.name} is queued as job ${reply.id}…`);
      while (reply.status === 'queued' || reply.status === 'running') {
        await new Promise((resolve) => setTimeout(resolve, 1000));
        reply = await apiJson(`/v1/jobs/${encodeURIComponent(reply.id)}`);
      }
      if (reply.status === 'failed') {
        throw new ApiError(0, reply.error.code, reply.error.message);
      }
      reply = reply.asset;
    }
    say(status, `Added ${reply.file_name || reply.id}: ${seconds(reply.duration_s)}, ${count(reply.tokens)} tokens.`, 'ok');
    $('upload-form').reset();
    loadArchive();
  } catch (e) {
    say(status, e);
  }
}

// ---------------------------------------------------------------- start

function setupToken() {
  const input = $('token');
  input.value = sessionStorage.getItem('pairalign-token') || '';
  input.addEventListener('change', () => {
    sessionStorage.setItem('pairalign-token', input.value.trim());
    if (location.hash === '#archive') loadArchive();
  });
}

setupToken();
setupClip();
setupPlayer();
setupArchive();
$('search-form').addEventListener('submit', search);
window.addEventListener('hashchange', route);
route();
