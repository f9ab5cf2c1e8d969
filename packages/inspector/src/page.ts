// The web view's one page: plain HTML, CSS and a script that redraws from /events. No build
// step and nothing fetched from elsewhere, so it works on a machine without internet.
export const PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>synod inspect</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5rem; background: #f6f7f9; color: #1d2330; }
  h1 { font-size: 1.2rem; margin: 0 0 1rem; }
  h1 .leader { color: #0a6c3a; }
  #nodes { display: flex; flex-wrap: wrap; gap: 1rem; }
  .card { background: #fff; border: 1px solid #d6dae2; border-radius: 8px; padding: .8rem 1rem; width: 22rem; }
  .card.leader { border-color: #0a6c3a; box-shadow: 0 0 0 2px #0a6c3a33; }
  .card.gone { opacity: .45; }
  .card h2 { font-size: 1.05rem; margin: 0 0 .4rem; display: flex; justify-content: space-between; }
  .role { font-size: .8rem; padding: .05rem .5rem; border-radius: 1rem; background: #e4e7ee; }
  .leader .role { background: #0a6c3a; color: #fff; }
  dl { display: grid; grid-template-columns: auto 1fr; gap: .1rem .8rem; margin: .3rem 0; }
  dt { color: #5b6475; } dd { margin: 0; font-variant-numeric: tabular-nums; }
  .actors { margin: .4rem 0; padding: 0; list-style: none; font-family: ui-monospace, monospace; font-size: .8rem; }
  .actors .state { color: #1f4fbf; }
  .slots { display: flex; flex-wrap: wrap; gap: 2px; margin-top: .4rem; }
  .slot { width: 9px; height: 14px; border-radius: 2px; background: #e4e7ee; }
  .slot.accepted { background: #e8a33d; } .slot.chosen { background: #3d7be8; } .slot.applied { background: #2f9e5b; }
  .legend span { display: inline-block; margin-right: .8rem; font-size: .8rem; }
  .legend i { display: inline-block; width: 9px; height: 9px; margin-right: .3rem; border-radius: 2px; }
  #events { margin-top: 1.2rem; background: #fff; border: 1px solid #d6dae2; border-radius: 8px; padding: .6rem 1rem;
            font-family: ui-monospace, monospace; font-size: .8rem; max-height: 18rem; overflow-y: auto; }
  #status { color: #8a2020; }
</style>
</head>
<body>
<h1>synod inspect: group <span id="group">?</span>, leader <span id="leader" class="leader">?</span> <span id="status"></span></h1>
<div class="legend"><span><i class="slot accepted"></i>accepted</span><span><i class="slot chosen"></i>chosen</span><span><i class="slot applied"></i>applied</span></div>
<div id="nodes"></div>
<div id="events"></div>
<script>
const SLOTS = 60;
const el = (tag, attrs = {}, text) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v);
  if (text !== undefined) node.textContent = text;
  return node;
};
function card(n, top) {
  const s = n.summary;
  const c = el('section', { class: 'card' + (s.role === 'leader' ? ' leader' : '') + (n.stale ? ' gone' : ''), 'data-node': n.node, 'data-role': n.stale ? 'gone' : s.role });
  const h = el('h2', {}, n.node);
  h.append(el('span', { class: 'role' }, n.stale ? 'gone' : s.role));
  c.append(h);
  const dl = el('dl');
  const row = (label, value, cls) => { dl.append(el('dt', {}, label)); dl.append(el('dd', { class: cls }, String(value))); };
  row('ballot', s.ballot, 'ballot');
  row('leader', s.leader ?? '-', 'leader-name');
  row('commit index', s.commitIndex, 'commit');
  row('applied', s.appliedThrough, 'applied');
  row('accepted', s.acceptedThrough, 'accepted');
  row('messages/s', Math.round(n.messagesPerSecond), 'rate');
  row('events/s', Math.round(n.eventsPerSecond), 'events');
  row('members', s.members.join(', '), 'members');
  c.append(dl);
  const actors = el('ul', { class: 'actors' });
  for (const a of n.actors) {
    const li = el('li', { 'data-actor': a.id });
    li.append(el('span', {}, a.id + ' '), el('span', { class: 'state' }, a.state));
    actors.append(li);
  }
  c.append(actors);
  const slots = el('div', { class: 'slots', title: 'log slots' });
  for (let slot = Math.max(0, top - SLOTS + 1); slot <= top; slot++) {
    const kind = slot <= s.appliedThrough ? 'applied' : slot <= s.commitIndex ? 'chosen' : slot <= s.acceptedThrough ? 'accepted' : 'empty';
    slots.append(el('div', { class: 'slot ' + kind, title: 'slot ' + slot + ': ' + kind }));
  }
  c.append(slots);
  return c;
}
function draw(state) {
  document.getElementById('group').textContent = state.group;
  document.getElementById('leader').textContent = state.leader ?? '(none)';
  document.getElementById('status').textContent = state.malformed > 0 ? state.malformed + ' malformed messages dropped' : '';
  const top = Math.max(0, ...state.nodes.map((n) => Math.max(n.summary.acceptedThrough, n.summary.commitIndex)));
  document.getElementById('nodes').replaceChildren(...state.nodes.map((n) => card(n, top)));
  const events = document.getElementById('events');
  events.replaceChildren(...state.events.slice().sort((x, y) => y.at - x.at).map((e) => {
    const what = e.kind === 'transition' ? '-> ' + e.state : e.kind === 'actor' ? 'started' : '<- ' + e.event + (e.source ? ' from ' + e.source : '');
    return el('div', { class: 'event' }, new Date(e.at).toISOString().slice(11, 23) + '  ' + e.node + '  ' + e.actor + '  ' + what);
  }));
}
const source = new EventSource('/events');
source.onmessage = (message) => draw(JSON.parse(message.data));
source.onerror = () => { document.getElementById('status').textContent = '(disconnected from synod inspect)'; };
</script>
</body>
</html>
`;
