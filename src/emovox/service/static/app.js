// emovox web page: upload or record audio; the emotion, speaker lanes, a per-speaker summary,
// and live results while recording (WebSocket /v1/stream). Plain JavaScript, no external
// libraries (the page works offline).
"use strict";

const EMOTION_COLORS = {
  angry: "#d62728", anger: "#d62728", disgust: "#8c564b", fear: "#9467bd", fearful: "#9467bd",
  happy: "#ff9f1c", happiness: "#ff9f1c", neutral: "#7f7f7f", calm: "#2ca02c", sad: "#1f77b4",
  sadness: "#1f77b4", surprise: "#17becf", surprised: "#17becf", ps: "#17becf", boredom: "#bcbd22",
};
const FALLBACK = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf"];
const $ = (id) => document.getElementById(id);
const colorOf = (label, labels) =>
  EMOTION_COLORS[label.toLowerCase()] || FALLBACK[Math.max(0, labels.indexOf(label)) % FALLBACK.length];
const pct = (p) => `${(100 * p).toFixed(1)}%`;

function mmss(t) {
  const s = Math.round(Math.max(0, t));
  const two = (n) => String(n).padStart(2, "0");
  return s >= 3600 ? `${Math.floor(s / 3600)}:${two(Math.floor(s / 60) % 60)}:${two(s % 60)}`
                   : `${two(Math.floor(s / 60))}:${two(s % 60)}`;
}

// Seconds between time-axis labels: a round step (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10, 15, 30 min, 1 h...)
// giving at most 8 intervals, so that labels read 00:00, 00:05, 00:10 rather than 00:05, 00:10, 00:16.
function tickStep(duration) {
  const steps = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600];
  return steps.find((s) => duration / s <= 8) || 3600 * Math.ceil(duration / (8 * 3600));
}

function setStatus(text) { $("status").textContent = text || ""; }

function showError(text) {
  const el = $("error");
  el.textContent = text || "";
  el.hidden = !text;
}

// A new request or an error never leaves the previous file's result on screen.
function clearResult() {
  $("result").hidden = true;
  for (const id of ["top-label", "top-prob", "meta"]) $(id).textContent = "";
  delete $("top-label").dataset.state;
  $("probabilities").querySelector("tbody").replaceChildren();
  $("summary").querySelector("thead").replaceChildren();
  $("summary").querySelector("tbody").replaceChildren();
  $("legend").replaceChildren();
  const canvas = $("timeline-chart");
  canvas.getContext("2d").clearRect(0, 0, canvas.width, canvas.height);
  delete canvas.dataset.windows;
  delete canvas.dataset.speakers;
  chartBoxes = [];
  $("tooltip").hidden = true;
}

async function postAudio(url, blob, filename) {
  const form = new FormData();
  form.append("file", blob, filename);
  const resp = await fetch(url, { method: "POST", body: form });
  let body = null;
  try { body = await resp.json(); } catch (e) { body = null; }
  if (!resp.ok) {
    const err = body && body.error ? body.error : { message: `HTTP ${resp.status}` };
    throw new Error(err.message + (err.hint ? ` (${err.hint})` : ""));
  }
  return body;
}

// The recording's verdict: an emotion, an uncertain one (top probability under the model's
// threshold), or no speech (no emotion at all: never a label made up from silence or noise).
function renderPrediction(pred) {
  const state = pred.no_speech || !pred.label ? "no_speech" : pred.uncertain ? "uncertain" : "confident";
  $("top-label").dataset.state = state;
  $("top-label").textContent = state === "no_speech" ? "no speech" : pred.label;
  $("top-prob").textContent = state === "no_speech" ? "(no emotion given)"
    : `(${pct(pred.probabilities[pred.label])}${state === "uncertain" ? ", uncertain" : ""})`;
  const sf = pred.speech_fraction == null ? "" : `, speech ${(100 * pred.speech_fraction).toFixed(0)}%`;
  const why = state === "no_speech" ? " · too little speech to judge an emotion"
    : state === "uncertain" ? " · no emotion stands out: the model is unsure" : "";
  $("meta").textContent = `${pred.source}: ${pred.duration.toFixed(2)} s${sf}${why}`;
  $("probabilities").hidden = state === "no_speech";
  const tbody = $("probabilities").querySelector("tbody");
  tbody.replaceChildren();
  const entries = Object.entries(pred.probabilities).sort((a, b) => b[1] - a[1]);
  for (const [label, p] of entries) {
    const tr = document.createElement("tr");
    if (label === pred.label) tr.className = "top";
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(200 * p)}px`;
    for (const cell of [label, pct(p), bar]) {
      const td = document.createElement("td");
      if (typeof cell === "string") td.textContent = cell; else td.appendChild(cell);
      tr.appendChild(td);
    }
    tr.dataset.label = label;
    tbody.appendChild(tr);
  }
}

// ------------------------------------------------------------------ speaker lanes + hover
let chartBoxes = [];  // {x0, x1, y0, y1, window} of each painted window, for the tooltip

function renderTimeline(tl) {
  const lanes = tl.speakers && tl.speakers.length ? tl.speakers : ["everyone"];
  const canvas = $("timeline-chart");
  const laneH = 34, pad = { l: 70, r: 20, t: 10, b: 40 };
  canvas.height = pad.t + laneH * lanes.length + 14 + pad.b;
  const ctx = canvas.getContext("2d");
  const W = canvas.width, H = canvas.height, pw = W - pad.l - pad.r;
  const dur = Math.max(tl.duration, 1e-3);
  const x = (t) => pad.l + (t / dur) * pw;
  const laneY = (i) => pad.t + i * laneH;
  ctx.clearRect(0, 0, W, H);
  ctx.font = "12px sans-serif";
  chartBoxes = [];
  lanes.forEach((name, i) => {
    const y = laneY(i);
    ctx.fillStyle = "#444";
    ctx.fillText(name, 8, y + laneH / 2 + 4);
    ctx.fillStyle = "#eee";
    const turns = tl.speakers && tl.speakers.length ? tl.turns.filter((t) => t.speaker === name)
                                                    : tl.speech;
    for (const t of turns) ctx.fillRect(x(t.start), y + 3, Math.max(1, x(t.end) - x(t.start)), laneH - 6);
    for (const w of tl.windows) {
      if (!w.probabilities || (tl.speakers && tl.speakers.length && w.speaker !== name)) continue;
      const centre = (w.start + w.end) / 2;
      const a = Math.max(w.start, centre - tl.hop / 2), b = Math.min(w.end, a + tl.hop);
      const p = w.probabilities[w.label];
      ctx.globalAlpha = Math.min(1, Math.max(0.15, p));
      ctx.fillStyle = colorOf(w.label, tl.labels);
      const box = { x0: x(a), x1: Math.max(x(a) + 1, x(b)), y0: y + 5, y1: y + laneH - 5, window: w, speaker: name };
      ctx.fillRect(box.x0, box.y0, box.x1 - box.x0, box.y1 - box.y0);
      ctx.globalAlpha = 1;
      chartBoxes.push(box);
    }
  });
  const stripY = laneY(lanes.length) + 4;
  ctx.fillStyle = "#444";
  ctx.fillText("speech", 8, stripY + 7);
  ctx.fillStyle = "#111";
  for (const s of tl.speech) ctx.fillRect(x(s.start), stripY, Math.max(1, x(s.end) - x(s.start)), 6);
  ctx.strokeStyle = "#999";
  ctx.strokeRect(pad.l, pad.t, pw, laneH * lanes.length);
  ctx.fillStyle = "#444";
  const step = tickStep(dur);
  for (let t = 0; t <= dur + 1e-6; t += step) ctx.fillText(mmss(t), x(t) - 14, H - 12);
  const legend = $("legend");
  legend.replaceChildren();
  const present = tl.labels.filter((k) => tl.windows.some((w) => w.label === k));
  for (const label of present) {
    const item = document.createElement("span");
    const swatch = document.createElement("i");
    swatch.style.background = colorOf(label, tl.labels);
    item.append(swatch, label);
    legend.appendChild(item);
  }
  canvas.dataset.windows = String(tl.windows.length);
  canvas.dataset.speakers = String(tl.speakers ? tl.speakers.length : 0);
  canvas.dataset.lanes = String(lanes.length);
  renderSummary(tl);
}

function renderSummary(tl) {
  const head = $("summary").querySelector("thead"), body = $("summary").querySelector("tbody");
  head.replaceChildren();
  body.replaceChildren();
  const entries = Object.entries(tl.summary || {});
  if (!entries.length) {
    const td = document.createElement("td");
    td.textContent = "No window had enough speech to be given an emotion.";
    td.className = "muted";
    body.appendChild(document.createElement("tr")).appendChild(td);
    return;
  }
  const hr = document.createElement("tr");
  for (const h of ["speaker", "speech", ...tl.labels]) {
    const th = document.createElement("th");
    th.textContent = h;
    hr.appendChild(th);
  }
  head.appendChild(hr);
  for (const [name, e] of entries) {
    const tr = document.createElement("tr");
    tr.dataset.speaker = name;
    const cells = [name === "all" ? "everyone" : name, mmss(e.speech_seconds), ...tl.labels.map((k) => pct(e.shares[k]))];
    cells.forEach((text, j) => {
      const td = document.createElement("td");
      td.textContent = text;
      if (j >= 2 && tl.labels[j - 2] === e.dominant) {
        td.className = "dominant";
        td.style.background = colorOf(e.dominant, tl.labels) + "55";
      }
      tr.appendChild(td);
    });
    body.appendChild(tr);
  }
}

function onChartHover(ev) {
  const canvas = $("timeline-chart"), tip = $("tooltip");
  const rect = canvas.getBoundingClientRect();
  const cx = (ev.clientX - rect.left) * (canvas.width / rect.width);
  const cy = (ev.clientY - rect.top) * (canvas.height / rect.height);
  const box = chartBoxes.find((b) => cx >= b.x0 && cx <= b.x1 && cy >= b.y0 && cy <= b.y1);
  if (!box) { tip.hidden = true; return; }
  const w = box.window;
  const table = document.createElement("table");
  for (const [k, p] of Object.entries(w.probabilities).sort((a, b) => b[1] - a[1])) {
    const tr = document.createElement("tr");
    for (const text of [k, pct(p)]) {
      const td = document.createElement("td");
      td.textContent = text;
      tr.appendChild(td);
    }
    table.appendChild(tr);
  }
  const title = document.createElement("div");
  title.textContent = `${box.speaker} · ${mmss(w.start)}–${mmss(w.end)}${w.uncertain ? " · uncertain" : ""}`;
  tip.replaceChildren(title, table);
  tip.style.left = `${ev.clientX - rect.left + 12}px`;
  tip.style.top = `${ev.clientY - rect.top + 12}px`;
  tip.dataset.label = w.label;
  tip.hidden = false;
}

async function analyse(blob, filename) {
  clearResult();
  showError("");
  setStatus(`Analysing ${filename}…`);
  $("analyse").disabled = true;
  try {
    const params = new URLSearchParams({ model: $("model").value || "default", speakers: $("speakers").value,
                                         channels: $("channels").value });
    const body = await postAudio(`/v1/conversation?${params}`, blob, filename);
    renderPrediction(body.prediction);
    $("result").hidden = false;
    renderTimeline(body.timeline);
    setStatus("Done.");
  } catch (err) {
    clearResult();
    setStatus("");
    showError(err.message);
  } finally {
    $("analyse").disabled = false;
  }
}

// ------------------------------------------------------------------ microphone: live + 16-bit WAV
let recorder = null;

function encodeWav(chunks, rate) {
  const n = chunks.reduce((s, c) => s + c.length, 0);
  const buf = new ArrayBuffer(44 + 2 * n);
  const v = new DataView(buf);
  const str = (o, s) => { for (let i = 0; i < s.length; i++) v.setUint8(o + i, s.charCodeAt(i)); };
  str(0, "RIFF"); v.setUint32(4, 36 + 2 * n, true); str(8, "WAVE"); str(12, "fmt ");
  v.setUint32(16, 16, true); v.setUint16(20, 1, true); v.setUint16(22, 1, true);
  v.setUint32(24, rate, true); v.setUint32(28, 2 * rate, true); v.setUint16(32, 2, true);
  v.setUint16(34, 16, true); str(36, "data"); v.setUint32(40, 2 * n, true);
  let o = 44;
  for (const c of chunks) {
    for (let i = 0; i < c.length; i++, o += 2) {
      const s = Math.max(-1, Math.min(1, c[i]));
      v.setInt16(o, s < 0 ? s * 0x8000 : s * 0x7fff, true);
    }
  }
  return new Blob([buf], { type: "audio/wav" });
}

// Linear-interpolation resampler to 16 kHz that carries its position across chunks.
function makeResampler(rate) {
  const step = rate / 16000;
  let pos = 0, last = 0;
  return (x) => {
    const out = [];
    while (pos < x.length) {  // positions in [last, ...x] coordinates: index 0 is `last`
      const i = Math.floor(pos), f = pos - i;
      const a = i === 0 ? last : x[i - 1], b = x[i];
      out.push(a + (b - a) * f);
      pos += step;
    }
    pos -= x.length;
    last = x[x.length - 1];
    const pcm = new Int16Array(out.length);
    for (let i = 0; i < out.length; i++) {
      const s = Math.max(-1, Math.min(1, out[i]));
      pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
    return pcm;
  };
}

function openLive() {
  const proto = location.protocol === "https:" ? "wss" : "ws";
  const params = new URLSearchParams({ model: $("model").value || "default" });
  const ws = new WebSocket(`${proto}://${location.host}/v1/stream?${params}`);
  ws.binaryType = "arraybuffer";
  const chart = $("live-chart");
  const ctx = chart.getContext("2d");
  ctx.clearRect(0, 0, chart.width, chart.height);
  chart.dataset.windows = "0";
  chart.dataset.speakers = "0";
  $("live-label").textContent = "listening…";
  $("live-prob").textContent = "";
  $("live").hidden = false;
  ws.onmessage = (ev) => {
    const msg = JSON.parse(ev.data);
    if (msg.type === "error") { showError(`Live: ${msg.message}`); return; }
    if (msg.type !== "window") return;
    const n = Number(chart.dataset.windows) + 1;
    chart.dataset.windows = String(n);
    const slot = 12, i = (n - 1) % Math.floor(chart.width / slot);
    ctx.clearRect(i * slot, 0, slot, chart.height);
    if (msg.label) {
      ctx.globalAlpha = Math.max(0.15, msg.probabilities[msg.label]);
      ctx.fillStyle = colorOf(msg.label, Object.keys(msg.probabilities));
      ctx.fillRect(i * slot, 4, slot - 2, chart.height - 8);
      ctx.globalAlpha = 1;
      $("live-label").textContent = msg.speaker ? `${msg.speaker} · ${msg.label}` : msg.label;
      chart.dataset.speakers = String(Math.max(Number(chart.dataset.speakers || 0),
                                               msg.speaker ? Number(msg.speaker.slice(1)) : 0));
      $("live-prob").textContent = `(${pct(msg.probabilities[msg.label])}${msg.uncertain ? ", uncertain" : ""}, ${mmss(msg.end)})`;
    } else {
      ctx.fillStyle = "#ddd";
      ctx.fillRect(i * slot, chart.height / 2 - 1, slot - 2, 2);
      $("live-label").textContent = "(no speech)";
      $("live-prob").textContent = `(${mmss(msg.end)})`;
    }
  };
  return ws;
}

async function startRecording() {
  showError("");
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    showError("This browser cannot record here (the page needs http://127.0.0.1 or https).");
    return;
  }
  try {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    const context = new AudioContext();
    await context.resume();
    const source = context.createMediaStreamSource(stream);
    const node = context.createScriptProcessor(4096, 1, 1);
    const chunks = [];
    const resample = makeResampler(context.sampleRate);
    const ws = openLive();
    node.onaudioprocess = (e) => {
      const x = new Float32Array(e.inputBuffer.getChannelData(0));
      chunks.push(x);
      if (ws.readyState === WebSocket.OPEN) ws.send(resample(x).buffer);
    };
    source.connect(node);
    node.connect(context.destination);
    recorder = { stream, context, node, source, chunks, ws };
    $("record").disabled = true;
    $("stop").disabled = false;
    $("record-status").textContent = "Recording…";
  } catch (err) {
    showError(`Microphone not available: ${err.message}`);
  }
}

async function stopRecording() {
  if (!recorder) return;
  const { stream, context, node, source, chunks, ws } = recorder;
  recorder = null;
  source.disconnect(); node.disconnect();
  stream.getTracks().forEach((t) => t.stop());
  if (ws.readyState === WebSocket.OPEN) ws.send("end");  // the server sends the last windows, then "end"
  const rate = context.sampleRate;
  await context.close();
  $("record").disabled = false;
  $("stop").disabled = true;
  $("record-status").textContent = "";
  await analyse(encodeWav(chunks, rate), "recording.wav");
}

// ------------------------------------------------------------------ models
async function loadModels() {
  try {
    const [health, list] = await Promise.all([fetch("/healthz").then((r) => r.json()),
                                              fetch("/v1/models").then((r) => r.json())]);
    const m = health.model || {};
    $("model-info").textContent = `Model: ${m.name || "?"} · labels: ${(m.labels || []).join(", ")}`;
    const select = $("model");
    select.replaceChildren();
    const def = document.createElement("option");
    def.value = "default";
    def.textContent = `server default (${m.name || "?"})`;
    select.appendChild(def);
    for (const model of list.models || []) {
      if (model.name === "default") continue;  // the server's default is the first entry
      const opt = document.createElement("option");
      opt.value = model.name;
      opt.textContent = `${model.name} (${model.model}, ${model.labels.length} emotions)`;
      select.appendChild(opt);
    }
  } catch (e) { /* informational only */ }
}

document.addEventListener("DOMContentLoaded", () => {
  $("upload-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    const file = $("file").files[0];
    if (!file) { clearResult(); showError("Choose an audio file first."); return; }
    analyse(file, file.name);
  });
  $("record").addEventListener("click", startRecording);
  $("stop").addEventListener("click", stopRecording);
  const chart = $("timeline-chart");
  chart.addEventListener("mousemove", onChartHover);
  chart.addEventListener("mouseleave", () => { $("tooltip").hidden = true; });
  loadModels();
});
