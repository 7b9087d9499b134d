// colorgan web page: upload photos, show colorized results with a before/after slider.
'use strict';

const $ = (sel, root = document) => root.querySelector(sel);
const MB = 1024 * 1024;
const MAX_RETRIES = 4;      // retries after a 503 "server busy"
const DEBOUNCE_MS = 300;    // vividness or tint slider -> new request

let info = { model: '', vividness: 1, max_upload_mb: 20, max_pixels: 0, formats: ['png', 'jpeg'], auto_levels: false,
  hints: false, cast_correction: 0, cast_correction_per_photo: false };

// A server started with --api-key answers 401 without the key: ask once, keep it for this browser tab.
const KEY_ITEM = 'colorgan-api-key';
const keyHeaders = () => {
  const key = sessionStorage.getItem(KEY_ITEM);
  return key ? { Authorization: `Bearer ${key}` } : {};
};
async function withKey(url, options = {}) {
  for (;;) {
    const res = await fetch(url, { ...options, headers: { ...(options.headers || {}), ...keyHeaders() } });
    if (res.status !== 401) return res;
    const key = window.prompt(sessionStorage.getItem(KEY_ITEM) ? 'That key was refused. API key:' : 'This server needs an API key:');
    if (!key) return res;  // cancelled: the 401 is shown as the error
    sessionStorage.setItem(KEY_ITEM, key.trim());
  }
}

const infoReady = withKey('/v1/info')
  .then((r) => (r.ok ? r.json() : Promise.reject(new Error(`HTTP ${r.status}`))))
  .then((j) => {
    info = { ...info, ...j };
    $('#model').textContent = `model: ${info.model || 'unknown'}`;
    const limits = [`up to ${info.max_upload_mb} MB`];
    if (info.max_pixels) limits.push(`${+(info.max_pixels / 1e6).toFixed(1)} megapixels`);
    $('#limits').textContent = `Several at once is fine (${limits.join(', ')} each). You can also paste an image.`;
  })
  .catch((e) => { $('#model').textContent = `model: unknown (server info unavailable: ${e.message})`; });

const sleep = (ms, signal) => new Promise((resolve, reject) => {
  const t = setTimeout(resolve, ms);
  signal.addEventListener('abort', () => { clearTimeout(t); reject(new DOMException('aborted', 'AbortError')); }, { once: true });
});

const stemOf = (name) => (name.replace(/\.[^.]*$/, '') || 'image');
const sizeText = (w, h) => `${w} x ${h}`;

function retryAfterSeconds(res) {
  const h = res.headers.get('Retry-After');
  let s = Number(h);
  if (h && !Number.isFinite(s)) s = (Date.parse(h) - Date.now()) / 1000;
  return Math.min(60, Math.max(1, Math.ceil(Number.isFinite(s) ? s : 2)));
}

async function errorMessage(res) {
  let msg = '';
  try {
    const j = await res.json();
    msg = j && j.error ? String(j.error) : '';
  } catch { /* not JSON */ }
  return msg || `server error: HTTP ${res.status} ${res.statusText}`.trim();
}

// ---- card state helpers ----

function setStatus(card, text) {
  $('.status', card).textContent = text;
  $('.stage', card).dataset.hint = text;
}

function setState(card, state, text = '') {
  card.dataset.state = state;
  setStatus(card, text);
  if (state !== 'error') showError(card, '');
}

function showError(card, msg) {
  const el = $('.error', card);
  el.textContent = msg;
  el.hidden = !msg;
}

function fail(card, msg) {
  setState(card, 'error');
  showError(card, msg);
}

function setCompare(card, value) {
  const v = Math.min(100, Math.max(0, Number(value)));
  $('.compare', card).value = String(v);
  $('.stage', card).style.setProperty('--pos', `${v}%`);
}

// ---- the request ----

// A card's options as the API's query, for /v1/colorize and /v1/variants alike: vividness, auto levels, tint
// removal (cast_correction, where the server takes it per photo: not a SavedModel's built-in one), hints.
function optionsQuery(card) {
  const viv = $('.vividness', card).value;
  const levels = $('.auto-levels', card).checked ? '&auto_levels=1' : '';
  const cast = $('.ctl-cast', card).hidden ? '' :
    `&cast_correction=${encodeURIComponent($('.cast-correction', card).value)}`;
  return `&vividness=${encodeURIComponent(viv)}${levels}${cast}${hintsQuery(card.st.hints)}`;
}

async function colorize(card) {
  const st = card.st;
  const seq = ++st.seq;
  if (st.ctrl) st.ctrl.abort();
  const ctrl = (st.ctrl = new AbortController());
  const fmt = $('.format', card).value;
  const url = `/v1/colorize?format=${encodeURIComponent(fmt)}${optionsQuery(card)}`;
  const stale = () => seq !== st.seq;
  setState(card, 'working', st.outUrl ? 'updating…' : 'colorizing…');
  try {
    for (let attempt = 0; ; attempt++) {
      let res;
      try {
        res = await withKey(url, {
          method: 'POST',
          body: st.file,
          headers: { 'Content-Type': st.file.type || 'application/octet-stream' },
          signal: ctrl.signal,
        });
      } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new Error(`network error: ${e.message}`);
      }
      if (stale()) return;
      if (res.status === 503 && attempt < MAX_RETRIES) {
        const wait = retryAfterSeconds(res);
        setStatus(card, `server busy, retrying in ${wait} s (${attempt + 1}/${MAX_RETRIES})`);
        await sleep(wait * 1000, ctrl.signal);
        if (stale()) return;
        setStatus(card, st.outUrl ? 'updating…' : 'colorizing…');
        continue;
      }
      if (!res.ok) throw new Error(await errorMessage(res));
      let blob;
      try { blob = await res.blob(); } catch (e) {
        if (e.name === 'AbortError') throw e;
        throw new Error(`network error: ${e.message}`);
      }
      if (stale()) return;
      await showOutput(card, blob, fmt, stale);
      return;
    }
  } catch (e) {
    if (stale() || e.name === 'AbortError') return;
    fail(card, e.message || String(e));
  }
}

async function showOutput(card, blob, fmt, stale) {
  const st = card.st;
  const url = URL.createObjectURL(blob);
  const probe = new Image();
  probe.src = url;
  try { await probe.decode(); } catch {
    URL.revokeObjectURL(url);
    if (!stale()) fail(card, 'the server sent an image the browser cannot display');
    return;
  }
  if (stale()) { URL.revokeObjectURL(url); return; }
  const old = st.outUrl;
  st.outUrl = url;
  const img = $('.colorized', card);
  img.src = url;
  if (old) setTimeout(() => URL.revokeObjectURL(old), 1000);
  const stage = $('.stage', card);
  stage.classList.add('has-output');
  if (stage.classList.contains('no-preview')) $('.dims', card).textContent = sizeText(probe.naturalWidth, probe.naturalHeight);
  const ext = blob.type.includes('jpeg') || (!blob.type.includes('png') && fmt === 'jpeg') ? 'jpg' : 'png';
  const a = $('.download', card);
  a.href = url;
  a.download = `${stemOf(st.file.name)}_colorized.${ext}`;
  a.removeAttribute('aria-disabled');
  setState(card, 'done');
}

// ---- colour hints (a model trained with --hints) ----

// X,Y as fractions of the photo (always written with a point, so the server reads them as fractions), COLOR #rrggbb.
function hintsQuery(hints) {
  if (!hints.length) return '';
  return '&hints=' + encodeURIComponent(hints.map((h) => `${h.x.toFixed(4)},${h.y.toFixed(4)},${h.color}`).join(';'));
}

// The colour the page shows at a point of the colorized photo: where the colour picker opens.
function colourAt(img, fx, fy) {
  const c = document.createElement('canvas');
  c.width = 1; c.height = 1;
  const g = c.getContext('2d');
  g.drawImage(img, Math.floor(fx * img.naturalWidth), Math.floor(fy * img.naturalHeight), 1, 1, 0, 0, 1, 1);
  const [r, gg, b] = g.getImageData(0, 0, 1, 1).data;
  return '#' + [r, gg, b].map((v) => v.toString(16).padStart(2, '0')).join('');
}

// Re-colorize a moment after the last change (a colour being picked, a hint being dragged).
function colorizeSoon(card) {
  clearTimeout(card.st.timer);
  card.st.timer = setTimeout(() => colorize(card), DEBOUNCE_MS);
}

// Where a pointer is on the photo, as fractions of its width and height (kept inside it).
function photoFraction(card, e) {
  const r = $('.colorized', card).getBoundingClientRect();
  if (!r.width || !r.height) return null;
  return [Math.min(0.9999, Math.max(0, (e.clientX - r.left) / r.width)),
          Math.min(0.9999, Math.max(0, (e.clientY - r.top) / r.height))];
}

function whereText(h) { return `${Math.round(h.x * 100)}%, ${Math.round(h.y * 100)}%`; }

// A dot on the photo per hint, in its colour: drag it to move the hint (the photo is colorized again as it moves).
function hintDot(card, h, i, where) {
  const dot = document.createElement('span');
  dot.className = 'hint-dot';
  dot.title = `Hint ${i + 1}: drag to move`;
  const place = () => {
    dot.style.left = `${h.x * 100}%`;
    dot.style.top = `${h.y * 100}%`;
    dot.style.background = h.color;
  };
  place();
  dot.addEventListener('pointerdown', (e) => {
    if (e.button !== 0) return;
    e.stopPropagation();  // not a new hint, nor the compare divider
    e.preventDefault();  // nor the browser's own drag of the image under it (it cancels the pointer)
    dot.setPointerCapture(e.pointerId);
  });
  dot.addEventListener('pointermove', (e) => {
    if (!dot.hasPointerCapture(e.pointerId)) return;
    const f = photoFraction(card, e);
    if (!f) return;
    [h.x, h.y] = f;
    place();
    where.textContent = whereText(h);
    colorizeSoon(card);
  });
  dot.addEventListener('pointerup', (e) => {
    if (!dot.hasPointerCapture(e.pointerId)) return;
    clearTimeout(card.st.timer);  // released: the final place at once
    colorize(card);
  });
  dot.update = place;
  return dot;
}

function renderHints(card) {
  const list = $('.hints', card);
  const stage = $('.stage', card);
  list.replaceChildren();
  stage.querySelectorAll('.hint-dot').forEach((d) => d.remove());
  list.hidden = !card.st.hints.length;
  card.st.hints.forEach((h, i) => {
    const item = document.createElement('li');
    const pick = document.createElement('input');
    pick.type = 'color';
    pick.value = h.color;
    pick.className = 'hint-colour';
    pick.setAttribute('aria-label', `Colour of hint ${i + 1}`);
    const where = document.createElement('span');
    where.textContent = whereText(h);
    const dot = hintDot(card, h, i, where);
    pick.addEventListener('input', () => {
      h.color = pick.value;
      dot.update();
      colorizeSoon(card);
    });
    const drop = document.createElement('button');
    drop.type = 'button';
    drop.className = 'hint-remove';
    drop.textContent = '×';
    drop.setAttribute('aria-label', `Remove hint ${i + 1}`);
    drop.addEventListener('click', () => { card.st.hints.splice(i, 1); renderHints(card); colorize(card); });
    item.append(pick, where, drop);
    list.append(item);
    stage.append(dot);
  });
}

function addHint(card, e) {
  const f = photoFraction(card, e);
  if (!f) return;
  card.st.hints.push({ x: f[0], y: f[1], color: colourAt($('.colorized', card), f[0], f[1]) });
  renderHints(card);
  colorize(card);
}

// ---- variants: several colourings to pick from (a model trained with --hints) ----

const VARIANTS = 4;

// Ask for VARIANTS colourings under hints drawn from the current one (the user's own hints kept in each); show
// them as a strip. Picking one shows it and puts its hints on the photo, to be moved or changed from there.
async function showVariants(card) {
  const st = card.st;
  const strip = $('.variants', card);
  const btn = $('.variants-btn', card);
  const url = `/v1/variants?k=${VARIANTS}&format=jpeg${optionsQuery(card)}`;
  btn.disabled = true;
  setStatus(card, 'drawing variants…');
  try {
    const res = await withKey(url, {
      method: 'POST', body: st.file, headers: { 'Content-Type': st.file.type || 'application/octet-stream' },
    });
    if (!res.ok) throw new Error(await errorMessage(res));
    const answer = await res.json();
    strip.replaceChildren();
    answer.variants.forEach((v, i) => {
      const pick = document.createElement('button');
      pick.type = 'button';
      pick.className = 'variant';
      pick.setAttribute('aria-pressed', 'false');
      pick.setAttribute('aria-label', `Variant ${i + 1}: use it and its ${v.hints.length} hints`);
      const img = document.createElement('img');
      img.alt = `variant ${i + 1}`;
      img.src = `data:${answer.media_type};base64,${v.image}`;
      pick.append(img);
      pick.addEventListener('click', async () => {
        strip.querySelectorAll('.variant').forEach((b) => b.setAttribute('aria-pressed', String(b === pick)));
        const seq = ++st.seq;  // a request in flight is now stale
        if (st.ctrl) st.ctrl.abort();
        clearTimeout(st.timer);
        st.hints = v.hints.map((h) => ({ x: h.x, y: h.y, color: h.color }));
        renderHints(card);
        const blob = await (await fetch(img.src)).blob();
        await showOutput(card, blob, 'jpeg', () => seq !== st.seq);
      });
      strip.append(pick);
    });
    strip.hidden = false;
    setStatus(card, '');
  } catch (e) {
    showError(card, `variants: ${e.message || e}`);
    setStatus(card, '');
  } finally {
    btn.disabled = false;
  }
}

// ---- building cards ----

// A slider of a card, set to `value`, its value shown beside it; moving it asks the server again (debounced).
function slider(card, inputSel, outputSel, value) {
  const input = $(inputSel, card);
  const output = $(outputSel, card);
  input.value = String(value);
  const show = () => { output.textContent = Number(input.value).toFixed(2); };
  show();
  for (const type of ['input', 'change']) input.addEventListener(type, () => { show(); colorizeSoon(card); });
}

function makeCard(file) {
  const card = $('#card-tpl').content.firstElementChild.cloneNode(true);
  card.st = { file, seq: 0, ctrl: null, outUrl: null, inUrl: null, timer: 0, hints: [] };
  $('.name', card).textContent = file.name || 'pasted image';
  $('.name', card).title = file.name || '';
  $('.original', card).alt = `${file.name || 'photo'}, original shown in gray`;
  $('.colorized', card).alt = `${file.name || 'photo'}, colorized`;

  const fmtSel = $('.format', card);
  for (const f of info.formats.filter((x) => x === 'png' || x === 'jpeg')) fmtSel.add(new Option(f.toUpperCase(), f));
  if (!fmtSel.options.length) fmtSel.add(new Option('PNG', 'png'));

  slider(card, '.vividness', '.viv-val', info.vividness);
  $('.ctl-cast', card).hidden = !info.cast_correction_per_photo;
  slider(card, '.cast-correction', '.cast-val', info.cast_correction);  // the model's own strength to start from
  fmtSel.addEventListener('change', () => { clearTimeout(card.st.timer); colorize(card); });
  const levels = $('.auto-levels', card);
  $('.ctl-levels', card).hidden = !info.auto_levels;  // an exported SavedModel takes the photo as it is
  levels.addEventListener('change', () => { clearTimeout(card.st.timer); colorize(card); });
  $('.ctl-hints', card).hidden = !info.hints;  // only a model trained with --hints takes them
  $('.ctl-variants', card).hidden = !info.hints;  // variants are drawn hints: the same models
  $('.variants-btn', card).addEventListener('click', () => showVariants(card));
  const hintMode = $('.hint-mode', card);

  const stage = $('.stage', card);
  const compare = $('.compare', card);
  compare.addEventListener('input', () => setCompare(card, compare.value));
  const drag = (e) => {
    const r = stage.getBoundingClientRect();
    if (r.width) setCompare(card, Math.round(((e.clientX - r.left) / r.width) * 100));
  };
  stage.addEventListener('pointerdown', (e) => {
    if (!stage.classList.contains('has-output') || e.button !== 0) return;
    if (hintMode.checked) { addHint(card, e); return; }  // in hint mode a click places a hint, not the divider
    stage.setPointerCapture(e.pointerId);
    drag(e);
  });
  stage.addEventListener('pointermove', (e) => { if (stage.hasPointerCapture(e.pointerId)) drag(e); });
  setCompare(card, compare.value);

  $('.remove', card).addEventListener('click', () => {
    const st = card.st;
    st.seq++;
    clearTimeout(st.timer);
    if (st.ctrl) st.ctrl.abort();
    if (st.inUrl) URL.revokeObjectURL(st.inUrl);
    if (st.outUrl) URL.revokeObjectURL(st.outUrl);
    card.remove();
  });
  return card;
}

async function addFile(file) {
  await infoReady;
  const card = makeCard(file);
  $('#results').prepend(card);
  setState(card, 'working', 'reading…');

  const reject = (msg) => { card.classList.add('rejected'); fail(card, msg); };
  if (file.type && !file.type.startsWith('image/')) return reject(`not an image file (${file.type})`);
  if (file.size > info.max_upload_mb * MB) {
    return reject(`file is ${(file.size / MB).toFixed(1)} MB, over the ${info.max_upload_mb} MB upload limit`);
  }

  const st = card.st;
  const orig = $('.original', card);
  st.inUrl = URL.createObjectURL(file);
  orig.src = st.inUrl;
  try {
    await orig.decode();
    const w = orig.naturalWidth, h = orig.naturalHeight;
    $('.dims', card).textContent = sizeText(w, h);
    if (info.max_pixels && w * h > info.max_pixels) {
      return reject(`image is ${sizeText(w, h)} (${(w * h / 1e6).toFixed(1)} megapixels), over the ${(info.max_pixels / 1e6).toFixed(1)} megapixel limit`);
    }
  } catch {
    // The browser cannot show this format (e.g. TIFF); the server may still read it.
    $('.stage', card).classList.add('no-preview');
  }
  if (card.isConnected) colorize(card);
}

function addFiles(list) {
  for (const f of Array.from(list || [])) addFile(f);
}

// ---- input: picker, drag and drop anywhere on the page, paste ----

const input = $('#files');
const drop = $('#drop');
input.addEventListener('change', () => { addFiles(input.files); input.value = ''; });

const hasFiles = (e) => e.dataTransfer && Array.from(e.dataTransfer.types || []).includes('Files');
document.addEventListener('dragover', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  e.dataTransfer.dropEffect = 'copy';
  drop.classList.add('over');
});
document.addEventListener('dragleave', (e) => { if (!e.relatedTarget) drop.classList.remove('over'); });
document.addEventListener('drop', (e) => {
  if (!hasFiles(e)) return;
  e.preventDefault();
  drop.classList.remove('over');
  addFiles(e.dataTransfer.files);
});
document.addEventListener('paste', (e) => {
  const files = e.clipboardData ? Array.from(e.clipboardData.files || []) : [];
  if (files.length) { e.preventDefault(); addFiles(files); }
});
