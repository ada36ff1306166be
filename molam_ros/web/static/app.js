// molam live view: the JSON frames of molam_ros/web/server.py (`/ws`; the format is documented in
// molam_ros/web/frames.py) drawn with three.js, vendored under ./vendor/three (nothing is fetched
// from the internet: robots run offline).
//
// Both bodies are shown on one time line: a reactor frame carries the stamp of the partner frame
// it answers, so the page plays each body's buffered frames at (newest stamp heard - DELAY),
// interpolating, and the reaction lines up with what it reacts to. `?delay=0` shows the newest
// frames as they come.
//
// Pause (the button, or the space bar) freezes the view on a screen to look at a pose from every
// side; frames keep arriving and it goes on from the newest. Nothing is drawn while paused and
// still, which also leaves a software-rendered browser's CPU to a screenshot.
//
// `window.molam` counts what happened (frames, texts, rendered, drawn bodies) and holds
// `setPaused`, for tests/test_web_view_browser.py and for anyone debugging a headset from its console.

import * as THREE from 'three';
import { OrbitControls } from 'three/addons/controls/OrbitControls.js';
import { VRButton } from 'three/addons/webxr/VRButton.js';

const query = new URLSearchParams(location.search);
const DELAY = Number(query.get('delay') ?? 0.4); // s; the reaction node's avatar_display_delay
const KEEP = 3.0; // s of frames kept per body
const STALE = 2.0; // s without a newer frame: the body is drawn faded
const MAX_LOG = 200; // lines in the text panel
const UP = new THREE.Vector3(0, 1, 0);

const molam = { frames: 0, texts: 0, rendered: 0, drawn: 0, connected: false, webgl: false, errors: 0 };
window.molam = molam;

// --- the scene -----------------------------------------------------------------------------

const view = document.getElementById('view');
let renderer = null;
try {
  renderer = new THREE.WebGLRenderer({ antialias: true });
  molam.webgl = true;
} catch (e) {
  document.getElementById('nogl').style.display = 'block';
  console.error(e);
}

const scene = new THREE.Scene();
scene.background = new THREE.Color(0x1d2126);
const camera = new THREE.PerspectiveCamera(50, 1, 0.05, 100);
camera.position.set(0, 1.5, 4.2);
scene.add(new THREE.HemisphereLight(0xffffff, 0x404040, 2.0));
const sun = new THREE.DirectionalLight(0xffffff, 1.5);
sun.position.set(2, 4, 3);
scene.add(sun);
// The ROS world: moved in front of a VR user on entering VR, left where it is otherwise.
const world = new THREE.Group();
scene.add(world);
world.add(new THREE.GridHelper(10, 20, 0x5a6068, 0x33373c));

let controls = null;
if (renderer) {
  renderer.setPixelRatio(Math.min(window.devicePixelRatio, 2));
  renderer.xr.enabled = true;
  view.appendChild(renderer.domElement);
  controls = new OrbitControls(camera, renderer.domElement);
  controls.target.set(0, 0.9, 0);
  controls.update();
  controls.addEventListener('change', () => { dirty = true; });
  if ('xr' in navigator) document.body.appendChild(VRButton.createButton(renderer));
}

let dirty = true; // paused: something changed the picture (the camera, the window), draw once more

function resize() {
  dirty = true;
  camera.aspect = Math.max(view.clientWidth, 1) / Math.max(view.clientHeight, 1);
  camera.updateProjectionMatrix();
  if (renderer) renderer.setSize(view.clientWidth, view.clientHeight);
}
window.addEventListener('resize', resize);
resize();

// --- bodies --------------------------------------------------------------------------------

const jointGeometry = new THREE.SphereGeometry(0.035, 12, 8);
const headGeometry = new THREE.SphereGeometry(0.09, 16, 12);
const boneGeometry = new THREE.CylinderGeometry(0.022, 0.022, 1, 8); // along Y, scaled to length
const HEAD = 15; // SMPL joint index of the head

function lerpJoints(a, b, w) {
  return a.map((p, i) => {
    const q = b[i];
    if (!p || !q) return p || q;
    return [p[0] + (q[0] - p[0]) * w, p[1] + (q[1] - p[1]) * w, p[2] + (q[2] - p[2]) * w];
  });
}

class Body {
  constructor(info, bones) {
    const color = new THREE.Color(info.color);
    this.material = new THREE.MeshLambertMaterial({
      color, emissive: color.clone().multiplyScalar(0.35), transparent: true,
    });
    this.frames = []; // {stamp, joints}, sorted by stamp
    this.group = new THREE.Group();
    this.joints = [];
    for (let i = 0; i < 22; i++) {
      const mesh = new THREE.Mesh(i === HEAD ? headGeometry : jointGeometry, this.material);
      this.joints.push(mesh);
      this.group.add(mesh);
    }
    this.bones = bones.map(([a, b]) => {
      const mesh = new THREE.Mesh(boneGeometry, this.material);
      this.group.add(mesh);
      return { a, b, mesh };
    });
    this.group.visible = false;
    world.add(this.group);
  }

  push(stamp, joints) {
    const newest = this.frames.length ? this.frames[this.frames.length - 1].stamp : -Infinity;
    if (stamp < newest - 1.0) this.frames = []; // the stream started over
    let i = this.frames.length;
    while (i > 0 && this.frames[i - 1].stamp > stamp) i--;
    if (i > 0 && this.frames[i - 1].stamp === stamp) this.frames[i - 1] = { stamp, joints };
    else this.frames.splice(i, 0, { stamp, joints });
    const oldest = this.frames[this.frames.length - 1].stamp - KEEP;
    while (this.frames.length > 1 && this.frames[0].stamp < oldest) this.frames.shift();
  }

  newest() {
    return this.frames.length ? this.frames[this.frames.length - 1] : null;
  }

  sample(t) {
    const f = this.frames;
    if (!f.length) return null;
    if (t <= f[0].stamp) return f[0].joints;
    if (t >= f[f.length - 1].stamp) return f[f.length - 1].joints;
    let i = f.length - 1;
    while (f[i - 1].stamp > t) i--;
    const a = f[i - 1], b = f[i];
    return lerpJoints(a.joints, b.joints, (t - a.stamp) / (b.stamp - a.stamp));
  }

  draw(t, frozen) {
    // frozen: the pose held by pause (the buffer moves on meanwhile), undefined when not paused
    const joints = frozen === undefined ? this.sample(t) : frozen;
    this.group.visible = joints !== null;
    if (!joints) return false;
    const newest = this.newest();
    this.material.opacity = newest && t - newest.stamp > STALE ? 0.35 : 1.0;
    joints.forEach((p, i) => {
      this.joints[i].visible = p !== null;
      if (p) this.joints[i].position.set(p[0], p[1], p[2]);
    });
    const dir = new THREE.Vector3();
    for (const { a, b, mesh } of this.bones) {
      const p = joints[a], q = joints[b];
      mesh.visible = p !== null && q !== null;
      if (!mesh.visible) continue;
      dir.set(q[0] - p[0], q[1] - p[1], q[2] - p[2]);
      const length = dir.length();
      mesh.position.set((p[0] + q[0]) / 2, (p[1] + q[1]) / 2, (p[2] + q[2]) / 2);
      if (length > 1e-6) mesh.quaternion.setFromUnitVectors(UP, dir.divideScalar(length));
      mesh.scale.set(1, Math.max(length, 1e-6), 1);
    }
    return true;
  }
}

const bodies = new Map();

function centre() {
  // Mean of the bodies' newest pelvis (or first known joint) on the floor plane; null if none.
  const c = new THREE.Vector3();
  let n = 0;
  for (const body of bodies.values()) {
    const f = body.newest();
    const p = f && (f.joints[0] || f.joints.find((j) => j));
    if (p) { c.x += p[0]; c.z += p[2]; n++; }
  }
  return n ? c.divideScalar(n) : null;
}

// --- the time line: stamps heard -> the stamp to draw now ------------------------------------

let clockOffset = null; // stamp - local seconds, the largest over the last 2 s (least transport delay)
const offsets = [];

function noteStamp(stamp) {
  const now = performance.now() / 1000;
  offsets.push([now, stamp - now]);
  while (offsets.length > 1 && offsets[0][0] < now - 2) offsets.shift();
  clockOffset = Math.max(...offsets.map((o) => o[1]));
}

function drawStamp() {
  return clockOffset === null ? 0 : performance.now() / 1000 + clockOffset - DELAY;
}

// --- text: the HTML panel, and a panel in the scene for a headset ----------------------------

const log = document.getElementById('log');
const textCanvas = document.createElement('canvas');
textCanvas.width = 1024;
textCanvas.height = 320;
const textTexture = new THREE.CanvasTexture(textCanvas);
const textPanel = new THREE.Mesh(
  new THREE.PlaneGeometry(1.6, 0.5),
  new THREE.MeshBasicMaterial({ map: textTexture, transparent: true }),
);
textPanel.position.set(0, 2.1, -2.6);
textPanel.visible = false; // shown in VR only: on a screen the HTML panel says the same
scene.add(textPanel);
const recent = [];

function drawTextPanel() {
  const g = textCanvas.getContext('2d');
  g.fillStyle = 'rgba(20, 23, 27, 0.85)';
  g.fillRect(0, 0, textCanvas.width, textCanvas.height);
  g.font = '34px sans-serif';
  recent.slice(-6).forEach(([kind, text], i) => {
    g.fillStyle = kind === 'reply' ? '#ffe0bf' : kind === 'error' ? '#ff8080' : '#cfe3ff';
    const line = `${kind}: ${text}`;
    g.fillText(line.length > 56 ? line.slice(0, 55) + '…' : line, 20, 50 + i * 48);
  });
  textTexture.needsUpdate = true;
}

function addLine(kind, text, time) {
  const li = document.createElement('li');
  li.className = kind;
  const who = document.createElement('span');
  who.className = 'who';
  const at = time ? new Date(time * 1000).toLocaleTimeString() + ' ' : '';
  who.textContent = `${at}${kind}`;
  const body = document.createElement('span');
  body.className = 'text';
  body.textContent = text;
  li.append(who, body);
  log.appendChild(li);
  while (log.children.length > MAX_LOG) log.removeChild(log.firstChild);
  log.scrollTop = log.scrollHeight;
  recent.push([kind, text]);
  if (recent.length > 20) recent.shift();
  drawTextPanel();
}

// --- messages ------------------------------------------------------------------------------

function onHello(msg) {
  const legend = document.getElementById('legend');
  legend.textContent = '';
  for (const [name, info] of Object.entries(msg.bodies)) {
    if (!bodies.has(name)) bodies.set(name, new Body(info, msg.bones));
    const item = document.createElement('span');
    const swatch = document.createElement('i');
    swatch.className = 'swatch';
    swatch.style.background = info.color;
    item.append(swatch, info.label);
    legend.appendChild(item);
  }
}

function onMessage(msg) {
  if (msg.type === 'hello') onHello(msg);
  else if (msg.type === 'pose') {
    const body = bodies.get(msg.body);
    if (!body) return;
    body.push(msg.stamp, msg.joints);
    noteStamp(msg.stamp);
    molam.frames++;
  } else if (msg.type === 'text') {
    addLine(msg.kind, msg.text, msg.time);
    molam.texts++;
  } else if (msg.type === 'status') {
    const watchdog = msg.values.watchdog ? ` · ${msg.values.watchdog}` : '';
    document.getElementById('status').textContent = `${msg.level}: ${msg.message}${watchdog}`;
  } else if (msg.type === 'error') {
    addLine('error', msg.text, Date.now() / 1000);
    molam.errors++;
  }
}

let socket = null;
function connect() {
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  const ws = new WebSocket(`${scheme}://${location.host}/ws`);
  const connection = document.getElementById('connection');
  ws.onopen = () => {
    molam.connected = true;
    connection.textContent = `connected to ${location.host}`;
  };
  ws.onmessage = (event) => onMessage(JSON.parse(event.data));
  ws.onclose = () => {
    molam.connected = false;
    connection.textContent = 'disconnected; retrying...';
    setTimeout(connect, 1000);
  };
  socket = ws;
}
connect();

document.getElementById('say').addEventListener('submit', (event) => {
  event.preventDefault();
  const input = document.getElementById('command');
  const text = input.value.trim();
  if (!text) return;
  if (socket && socket.readyState === WebSocket.OPEN) {
    socket.send(JSON.stringify({ type: 'command', text }));
    input.value = '';
  } else {
    addLine('error', 'not connected: the command was not sent', Date.now() / 1000);
  }
});

// --- VR: the scene in front of the user, the text panel in view -----------------------------

if (renderer) {
  renderer.xr.addEventListener('sessionstart', () => {
    const c = centre() || new THREE.Vector3();
    world.position.set(-c.x, 0, -2.0 - c.z);
    textPanel.visible = true;
  });
  renderer.xr.addEventListener('sessionend', () => {
    world.position.set(0, 0, 0);
    textPanel.visible = false;
  });
}

// --- pause ---------------------------------------------------------------------------------

let paused = false;
let frozenAt = 0;
const pauseButton = document.getElementById('pause');

const frozen = new Map(); // body -> the joints shown when pause was pressed

function setPaused(value) {
  paused = Boolean(value);
  frozenAt = drawStamp();
  for (const [name, body] of bodies) frozen.set(name, body.sample(frozenAt));
  dirty = true;
  pauseButton.textContent = paused ? 'resume' : 'pause';
}
molam.setPaused = setPaused;
pauseButton.addEventListener('click', () => setPaused(!paused));
window.addEventListener('keydown', (event) => {
  if (event.code === 'Space' && document.activeElement?.tagName !== 'INPUT') {
    event.preventDefault();
    setPaused(!paused);
  }
});

// --- the loop ------------------------------------------------------------------------------

const target = new THREE.Vector3();
function follow() {
  // Keep the bodies in view on a screen as they walk: the orbit centre eases towards them.
  const c = centre();
  if (!c || !controls) return;
  target.set(c.x, 0.9, c.z).sub(controls.target).multiplyScalar(0.05);
  controls.target.add(target);
  camera.position.add(target);
}

function render() {
  const presenting = renderer.xr.isPresenting; // a headset draws every frame, paused or not
  if (paused && !presenting && !dirty) return;
  dirty = false;
  const t = paused ? frozenAt : drawStamp();
  let drawn = 0;
  for (const [name, body] of bodies) if (body.draw(t, paused ? frozen.get(name) : undefined)) drawn++;
  if (!presenting) {
    if (!paused) follow();
    controls.update();
  }
  renderer.render(scene, camera);
  molam.drawn = drawn;
  if (drawn) molam.rendered++;
}

if (renderer) renderer.setAnimationLoop(render);
