/* The run report's page script: draws the recorded run (JSON in #run-data) with ECharts, laid out by dagre. */
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("run-data").textContent);
  var run = data.run, steps = data.steps, ledger = data.ledger;
  var STATUS_COLORS = { succeeded: "#38a169", failed: "#e53e3e", error: "#e53e3e", skipped: "#a0aec0",
                        cancelled: "#718096", pending: "#cbd5e0", partial: "#dd6b20" };
  var PALETTE = ["#3182ce", "#805ad5", "#d69e2e", "#319795", "#dd6b20", "#d53f8c", "#2b6cb0", "#2f855a", "#9c4221"];

  function el(tag, attrs, text) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { node.setAttribute(k, attrs[k]); });
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function money(x) { return "$" + (x || 0).toFixed(4); }
  function secs(x) { return x === null || x === undefined ? "" : x.toFixed(3) + " s"; }
  function docName(d) { return d === "" ? "(run)" : d.split("/").pop(); }

  // --- header -------------------------------------------------------------------------------------------
  document.getElementById("title").textContent = run.kind + " " + run.id + " \u2014 " + run.status;
  document.getElementById("meta").textContent =
    run.request + " \u00b7 " + run.documents + " document(s) \u00b7 started " +
    new Date(run.started_at * 1000).toISOString().replace("T", " ").slice(0, 19) + " UTC" +
    (run.duration_s !== null ? " \u00b7 " + run.duration_s.toFixed(2) + " s" : "") +
    " \u00b7 " + run.sessions + " session(s)" + (run.error ? " \u00b7 " + run.error : "");

  // --- per plan step: aggregated over documents -----------------------------------------------------------
  var byStep = {};
  data.plan.steps.forEach(function (s) { byStep[s.id] = { id: s.id, tool: s.tool, counts: {}, attempts: 0, modes: {},
    calls: 0, tokens: 0, cost: 0, errors: [], busy: 0, n: 0 }; });
  steps.forEach(function (s) {
    var agg = byStep[s.step] || (byStep[s.step] = { id: s.step, tool: s.tool, counts: {}, attempts: 0, modes: {},
      calls: 0, tokens: 0, cost: 0, errors: [], busy: 0, n: 0 });
    agg.counts[s.status] = (agg.counts[s.status] || 0) + 1;
    agg.attempts += s.attempts; agg.n += 1; agg.calls += s.calls; agg.tokens += s.tokens; agg.cost += s.cost;
    s.modes.forEach(function (m) { agg.modes[m] = (agg.modes[m] || 0) + 1; });
    if (s.error && agg.errors.length < 3) agg.errors.push(docName(s.doc) + ": " + s.error);
    if (s.start !== null && s.end !== null) agg.busy += s.end - s.start;
  });
  function overall(agg) {  // any failure shows; a step that ran for some documents and not others is partial
    if (agg.counts.failed) return "failed";
    if (agg.counts.succeeded) return agg.counts.skipped || agg.counts.cancelled ? "partial" : "succeeded";
    if (agg.counts.cancelled) return "cancelled";
    if (agg.counts.skipped) return "skipped";
    return "pending";
  }

  // --- the plan graph: dagre lays it out, ECharts draws it ---------------------------------------------------
  var g = new dagre.graphlib.Graph();
  g.setGraph({ rankdir: "LR", nodesep: 30, ranksep: 70, marginx: 20, marginy: 20 });
  g.setDefaultEdgeLabel(function () { return {}; });
  data.plan.steps.forEach(function (s) { g.setNode(s.id, { width: 150, height: 46 }); });
  data.plan.steps.forEach(function (s) { s.deps.forEach(function (d) { if (g.hasNode(d)) g.setEdge(d, s.id); }); });
  dagre.layout(g);
  var nodes = data.plan.steps.map(function (s) {
    var n = g.node(s.id), agg = byStep[s.id], st = overall(agg);
    return { name: s.id, x: n.x, y: n.y, value: s.tool, symbol: "roundRect", symbolSize: [150, 46],
             itemStyle: { color: STATUS_COLORS[st], borderColor: "#1a202c", borderWidth: 1 },
             label: { show: true, formatter: "{id|" + s.id + "}\n{tool|" + s.tool + "}", color: "#fff",
                      rich: { id: { fontSize: 12, fontWeight: "bold", lineHeight: 16, color: "#fff" },
                              tool: { fontSize: 10, lineHeight: 14, color: "#f0fff4" } } },
             tooltip: { formatter: s.id + " (" + s.tool + "): " + JSON.stringify(agg.counts) } };
  });
  var links = [];
  data.plan.steps.forEach(function (s) { s.deps.forEach(function (d) { links.push({ source: d, target: s.id }); }); });
  var graphChart = echarts.init(document.getElementById("graph"));
  graphChart.setOption({
    animation: false, tooltip: {},
    series: [{ type: "graph", layout: "none", roam: true, data: nodes, links: links, edgeSymbol: ["none", "arrow"],
               edgeSymbolSize: 9, lineStyle: { color: "#4a5568", width: 1.5, curveness: 0.1 } }]
  });

  // --- the timeline: one row per step (single run) or per document (batch) ----------------------------------
  var batch = run.kind === "batch";
  var rows = [], rowIndex = {};
  var stepColor = {};
  data.plan.steps.forEach(function (s, i) { stepColor[s.id] = PALETTE[i % PALETTE.length]; });
  var timed = steps.filter(function (s) { return s.start !== null && s.end !== null && s.row; });
  timed.forEach(function (s) {
    var key = batch ? s.doc : s.step;
    if (!(key in rowIndex)) { rowIndex[key] = rows.length; rows.push(batch ? docName(key) : key); }
  });
  var bars = timed.map(function (s) {
    var key = batch ? s.doc : s.step;
    var color = s.status === "succeeded" ? (stepColor[s.step] || "#3182ce") : STATUS_COLORS[s.status];
    return { value: [rowIndex[key], s.start, s.end, s.step], itemStyle: { color: color },
             name: docName(s.doc) + " \u00b7 " + s.step + " (" + s.status + ", " + secs(s.end - s.start) + ")" };
  });
  document.getElementById("timeline-title").textContent = batch
    ? "Timeline: one row per document (" + rows.length + " of " + run.documents + " drawn), colour per step"
    : "Timeline: one row per step";
  var timelineBox = document.getElementById("timeline");
  timelineBox.style.height = Math.min(6000, Math.max(220, rows.length * (batch ? 14 : 40) + 90)) + "px";
  var timeline = echarts.init(timelineBox);
  timeline.setOption({
    animation: false,
    tooltip: { formatter: function (p) { return p.name; } },
    grid: { left: 150, right: 30, top: 10, bottom: 50 },
    dataZoom: [{ type: "slider", xAxisIndex: 0, height: 18, bottom: 8 }, { type: "inside", xAxisIndex: 0 }],
    xAxis: { type: "value", name: "seconds", nameLocation: "middle", nameGap: 22, min: 0 },
    yAxis: { type: "category", data: rows, inverse: true, axisLabel: { fontSize: 10 } },
    series: [{
      type: "custom", encode: { x: [1, 2], y: 0 }, data: bars,
      renderItem: function (params, api) {
        var start = api.coord([api.value(1), api.value(0)]), end = api.coord([api.value(2), api.value(0)]);
        var h = Math.max(2, api.size([0, 1])[1] * 0.7);
        var rect = echarts.graphic.clipRectByRect(
          { x: start[0], y: start[1] - h / 2, width: Math.max(1, end[0] - start[0]), height: h },
          { x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height });
        return rect && { type: "rect", shape: rect, style: api.style() };
      }
    }]
  });
  // Steps running at each moment: parallelism for any number of documents.
  var edges = [];
  steps.forEach(function (s) { if (s.start !== null && s.end !== null) { edges.push([s.start, 1]); edges.push([s.end, -1]); } });
  edges.sort(function (a, b) { return a[0] - b[0] || a[1] - b[1]; });
  var level = 0, points = [[0, 0]], peak = 0;
  edges.forEach(function (e) { points.push([e[0], level]); level += e[1]; points.push([e[0], level]); peak = Math.max(peak, level); });
  var running = echarts.init(document.getElementById("running"));
  running.setOption({
    animation: false, grid: { left: 150, right: 30, top: 24, bottom: 24 },
    title: { text: "steps running at once (peak " + peak + ")", textStyle: { fontSize: 12 }, left: 150 },
    xAxis: { type: "value", min: 0 }, yAxis: { type: "value", minInterval: 1 },
    series: [{ type: "line", data: points, showSymbol: false, areaStyle: { opacity: 0.3 }, lineStyle: { width: 1 } }]
  });

  // --- the steps table ---------------------------------------------------------------------------------------
  var table = el("table");
  var head = el("tr");
  ["step", "tool", "status", "attempts", "worker modes", "model calls", "tokens", "cost", "busy", "errors"]
    .forEach(function (h) { head.appendChild(el("th", {}, h)); });
  table.appendChild(head);
  Object.keys(byStep).forEach(function (id) {
    var a = byStep[id], st = overall(a), tr = el("tr");
    var counts = Object.keys(a.counts).map(function (k) { return a.counts[k] + " " + k; }).join(", ") || "not run";
    var modes = Object.keys(a.modes).map(function (k) { return k + (batch ? " \u00d7" + a.modes[k] : ""); }).join(", ");
    tr.appendChild(el("td", {}, id));
    tr.appendChild(el("td", {}, a.tool));
    tr.appendChild(el("td", { "class": "st-" + st }, counts));
    tr.appendChild(el("td", { "class": "num" }, a.n ? (batch ? (a.attempts / a.n).toFixed(2) + " avg" : a.attempts) : ""));
    tr.appendChild(el("td", {}, modes));
    tr.appendChild(el("td", { "class": "num" }, a.calls));
    tr.appendChild(el("td", { "class": "num" }, a.tokens));
    tr.appendChild(el("td", { "class": "num" }, money(a.cost)));
    tr.appendChild(el("td", { "class": "num" }, secs(a.busy)));
    tr.appendChild(el("td", { "class": "err" }, a.errors.join("\n")));
    table.appendChild(tr);
  });
  document.getElementById("steps").appendChild(table);

  // --- cost ----------------------------------------------------------------------------------------------------
  var base = ledger.large_model_per_document;
  var figures = [
    ["documents", ledger.documents_done + " / " + ledger.documents],
    ["docs per second", ledger.docs_per_s.toFixed(2)],
    ["planner calls", ledger.planner_calls],
    ["worker model calls", ledger.model_calls],
    ["total cost", money(ledger.cost_usd)],
    ["per 1,000 documents", money(ledger.cost_per_1000_docs)],
    ["large model per document (" + base.model + "), per 1,000", base.usd_per_1000_docs === null ? "no price" : money(base.usd_per_1000_docs)]
  ];
  Object.keys(ledger.items_per_tier).forEach(function (t) { figures.push(["items answered by " + t, ledger.items_per_tier[t]]); });
  var box = document.getElementById("figures");
  figures.forEach(function (f) { var d = el("div", { "class": "figure" }); d.appendChild(el("b", {}, f[1])); d.appendChild(document.createTextNode(f[0])); box.appendChild(d); });
  var names = ["planner"], costs = [ledger.planner_cost_usd];
  Object.keys(ledger.per_step).forEach(function (k) { names.push(k); costs.push(ledger.per_step[k].cost_usd); });
  var costChart = echarts.init(document.getElementById("cost-chart"));
  costChart.setOption({
    animation: false, tooltip: {}, grid: { left: 150, right: 30, top: 10, bottom: 30 },
    xAxis: { type: "value", name: "US$" }, yAxis: { type: "category", data: names, inverse: true },
    series: [{ type: "bar", data: costs, itemStyle: { color: "#3182ce" } }]
  });
  var ct = el("table"), hr = el("tr");
  ["", "calls", "input tokens", "output tokens", "US$"].forEach(function (h) { hr.appendChild(el("th", {}, h)); });
  ct.appendChild(hr);
  [["planner", ledger.planner_calls, ledger.planner_input_tokens, ledger.planner_output_tokens, ledger.planner_cost_usd],
   ["worker models", ledger.model_calls, ledger.model_input_tokens, ledger.model_output_tokens, ledger.model_cost_usd],
   ["total", ledger.planner_calls + ledger.model_calls, ledger.planner_input_tokens + ledger.model_input_tokens,
    ledger.planner_output_tokens + ledger.model_output_tokens, ledger.cost_usd]].forEach(function (r) {
    var tr = el("tr");
    r.forEach(function (v, i) { tr.appendChild(el("td", i ? { "class": "num" } : {}, i === 4 ? money(v) : v)); });
    ct.appendChild(tr);
  });
  document.getElementById("cost-table").appendChild(ct);

  window.addEventListener("resize", function () { [graphChart, timeline, running, costChart].forEach(function (c) { c.resize(); }); });
  window.__report = { nodes: nodes.length, links: links.length, bars: bars.length, rows: rows.length, peak: peak };
})();
