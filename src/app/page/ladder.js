// The interactive ladder, shared by the demo page (live, from /events) and by
// `synack ladder FILE --html` (offline, from the capture). It draws the events the stack's
// tracer makes (`--trace=json`'s objects): one arrow per segment, labelled as Wireshark
// labels it, and between arrows what the stack decided. A long run of plain data and ACKs
// folds into one line that opens on a click. A click on an arrow shows that packet
// dissected by `synack explain`'s decoder, beside its bytes.
"use strict";
const SynackLadder = (() => {
  const FOLD_MIN = 12;        // a run of plain segments longer than this folds
  const RENDER_EVERY = 150;   // ms: the DOM is rebuilt at most this often

  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };

  function label(ev) {
    let s = ev.flags + " Seq=" + ev.seq;
    if (ev.ack !== null && ev.ack !== undefined) s += " Ack=" + ev.ack;
    s += " Win=" + ev.win + " Len=" + ev.len;
    if (ev.mss) s += " MSS=" + ev.mss;
    if (ev.sack_perm) s += " SACK_PERM";
    if (ev.ws !== null && ev.ws !== undefined) s += " WS=" + (2 ** ev.ws);
    for (const b of ev.sack || []) s += " SLE=" + b[0] + " SRE=" + b[1];
    if (ev.app) s += "  " + ev.app;
    return s;
  }

  // Plain segments fold: data or a bare ACK, nothing the learner should not miss.
  const plain = (ev) => ev.event === "segment" && (ev.flags === "[ACK]" || ev.flags === "[PSH, ACK]")
    && !(ev.notes && ev.notes.length)
    && !ev.fault_drop && !ev.retrans && !(ev.sack && ev.sack.length);

  function create(root, opts) {
    const box = el("div", "lad-box");
    const head = el("div", "lad-head");
    const leftName = el("span", "", "peer");
    const rightName = el("span", "", "synack");
    head.append(leftName, rightName);
    const rows = el("div", "lad-rows");
    box.append(head, rows);
    const side = el("div", "lad-box lad-side");
    const pane = el("div", "lad-pkt");
    const hexBox = el("div", "lad-hexbox");
    pane.append(el("div", "lad-empty", "Click an arrow to see that packet layer by layer."));
    side.append(pane, hexBox);
    const wrap = el("div", "lad-wrap");
    wrap.append(box, side);
    root.appendChild(wrap);

    let events = [];
    let left = null;
    const open = new Set();   // index of the first event of each unfolded run
    const maxEnd = {};        // per sender: highest seq + len seen, to spot retransmissions
    let selected = null;
    let timer = null;
    let note = "";

    function reset(leftAddr, rightAddr, text) {
      events = [];
      open.clear();
      for (const k of Object.keys(maxEnd)) delete maxEnd[k];
      left = leftAddr;
      leftName.textContent = leftAddr || "peer";
      rightName.textContent = rightAddr || "synack";
      selected = null;
      note = text || "";
      showText("Click an arrow to see that packet layer by layer.");
      schedule();
    }

    function add(list) {
      for (const ev of list) {
        if (ev.event === "segment") {
          if (left === null) {
            // The first segment seen names the columns: its sender is the peer when the
            // stack received it.
            left = ev.dir === "out" ? ev.dst : ev.src;
            leftName.textContent = left;
            rightName.textContent = ev.dir === "out" ? ev.src : ev.dst;
          }
          const end = ev.seq + ev.len;
          const m = maxEnd[ev.src];
          if (ev.len > 0 && m !== undefined && ev.seq < m) ev.retrans = true;
          if (m === undefined || end > m) maxEnd[ev.src] = end;
        }
        events.push(ev);
      }
      schedule();
    }

    function schedule() {
      if (timer === null) timer = setTimeout(() => { timer = null; render(); }, RENDER_EVERY);
    }

    function segRow(ev, i) {
      const toRight = ev.src === left;
      const row = el("div", "lad-seg " + (toRight ? "right" : "left"));
      if (!plain(ev) && !ev.retrans) row.classList.add("ctl");
      if (ev.flags.includes("RST")) row.classList.add("rst");
      if (ev.retrans) row.classList.add("retrans");
      if (ev.fault_drop) row.classList.add("lost");
      row.dataset.flags = ev.flags;
      row.dataset.len = ev.len;
      row.dataset.i = i;
      if (ev.pkt) row.dataset.pkt = ev.pkt;
      let text = label(ev);
      if (ev.retrans) text += "  (retransmission)";
      if (ev.fault_drop) text = "✗ lost on purpose: " + text;
      row.title = (ev.t !== undefined ? ev.t.toFixed(6) + " s  " : "") + text;
      row.append(el("div", "", text), el("div", "lad-line"));
      for (const n of ev.notes || []) row.appendChild(el("div", "lad-finding", n));
      if (selected === i) row.classList.add("sel");
      return row;
    }

    function evRow(ev) {
      let text;
      if (ev.event === "state") text = ev.from + " → " + ev.to;
      else text = ev.what || JSON.stringify(ev);
      return el("div", "lad-ev " + ev.event, text);
    }

    function render() {
      const atBottom = rows.scrollHeight - rows.scrollTop - rows.clientHeight < 40;
      const frag = document.createDocumentFragment();
      if (note) frag.appendChild(el("div", "lad-note", note));
      let i = 0;
      while (i < events.length) {
        if (plain(events[i])) {
          let j = i;
          while (j < events.length && plain(events[j])) j++;
          if (j - i > FOLD_MIN && !open.has(i)) {
            let data = 0, acks = 0;
            for (let k = i; k < j; k++) if (events[k].len > 0) data++; else acks++;
            const fold = el("div", "lad-fold", "▸ " + data + " data segments, " + acks + " ACKs (click to show each)");
            fold.dataset.count = j - i;
            const start = i;
            fold.onclick = () => { open.add(start); render(); };
            frag.appendChild(fold);
            i = j;
            continue;
          }
          for (let k = i; k < j; k++) frag.appendChild(segRow(events[k], k));
          i = j;
          continue;
        }
        const ev = events[i];
        frag.appendChild(ev.event === "segment" ? segRow(ev, i) : evRow(ev));
        i++;
      }
      rows.replaceChildren(frag);
      if (atBottom) rows.scrollTop = rows.scrollHeight;
      root.dataset.segments = String(events.filter((e) => e.event === "segment").length);
      root.dataset.events = String(events.length);
    }

    rows.addEventListener("click", (e) => {
      const row = e.target.closest(".lad-seg");
      if (!row) return;
      selected = Number(row.dataset.i);
      for (const r of rows.querySelectorAll(".lad-seg.sel")) r.classList.remove("sel");
      row.classList.add("sel");
      const pkt = row.dataset.pkt;
      if (!pkt) { showText("This segment's bytes were not kept (it never reached the device)."); return; }
      showText("Decoding packet " + pkt + "…");
      Promise.resolve(opts.decode(Number(pkt))).then(show, (err) => showText(String(err)));
    });

    function showText(t) {
      pane.replaceChildren(el("div", "lad-empty", t));
      hexBox.replaceChildren();
    }

    // The dissection, layer by layer, and the bytes; a click on a field lights its bytes.
    function show(d) {
      if (!d || d.type === "error") { showText(d ? d.what : "no answer"); return; }
      pane.replaceChildren();
      hexBox.replaceChildren();
      pane.dataset.pkt = d.pkt;
      const hex = el("div", "lad-hex");
      const spans = [];
      const bytes = d.hex.match(/../g) || [];
      for (let o = 0; o < bytes.length; o += 16) {
        hex.append(o.toString(16).padStart(4, "0") + "  ");
        for (let k = o; k < Math.min(o + 16, bytes.length); k++) {
          const s = el("span", "", bytes[k]);
          spans.push(s);
          hex.append(s, k % 16 === 7 ? "  " : " ");
        }
        hex.append("\n");
      }
      const light = (range, line) => {
        for (const s of spans) s.classList.remove("hl");
        for (const f of pane.querySelectorAll(".lad-f.on")) f.classList.remove("on");
        if (line) line.classList.add("on");
        if (!range) return;
        for (let k = range[0]; k < range[1] && k < spans.length; k++) spans[k].classList.add("hl");
        if (spans[range[0]]) spans[range[0]].scrollIntoView({ block: "nearest" });
      };
      for (const layer of d.layers) {
        const det = el("details", "lad-layer");
        det.open = true;
        const sum = el("summary", "", layer.title);
        sum.onclick = () => light(layer.bytes, null);
        det.appendChild(sum);
        for (const line of layer.lines) {
          const f = el("div", "lad-f" + (line.bytes ? " has" : ""), line.text);
          if (line.name) f.dataset.name = line.name;
          if (line.bytes) f.onclick = () => light(line.bytes, f);
          det.appendChild(f);
        }
        pane.appendChild(det);
      }
      hexBox.appendChild(hex);
    }

    return {
      reset, add, show,
      // For tests and the page: the segments drawn, in order.
      segments: () => events.filter((e) => e.event === "segment"),
      events: () => events,
      left: () => left,
      // Whether the drawing shows every event (it is redrawn at most every RENDER_EVERY ms).
      drawn: () => timer === null && root.dataset.events === String(events.length),
    };
  }

  return { create, label };
})();
