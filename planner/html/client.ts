// The page's only script (inlined): brick tooltip, colour mode, explode and peel controls, and the
// per-rank table rendered a window of rows at a time. Plain ES2020 in a string: it runs in the
// browser, reads the JSON in #plan-data and the data-* attributes of the bricks, and needs nothing else.
export const CLIENT_SCRIPT = String.raw`
(function () {
  'use strict';
  var data = JSON.parse(document.getElementById('plan-data').textContent);
  var cube = document.getElementById('cube');
  var tip = document.getElementById('tooltip');
  var byRank = {};
  data.table.rows.forEach(function (row, i) { byRank[row[0][0]] = i; });

  function el(tag, cls, text) {
    var e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  }
  var col = {};
  data.table.columns.forEach(function (c, i) { col[c.key] = i; });
  // The lines of a rank's tooltip, from its table row (cells are [sort key, text]).
  function tipLines(row, steps) {
    if (!row) return [];
    function c(key) { return row[col[key]][1]; }
    var lines = [
      (steps > 1 ? steps + ' sequential steps of ' : 'brick ') + c('brick') + ' · ' + c('madds') + ' multiply-adds',
      'receives A, B ' + c('fetched') + ' · sends C ' + c('sent') + ' · over network ' + c('network') + ' · peak ' + c('peak'),
      'predicted ' + c('total') + ' = compute ' + c('compute') + ' + communication ' + c('comm'),
    ];
    if (col.mTotal !== undefined && row[col.mTotal][0] >= 0)
      lines.push('measured ' + c('mTotal') + ' (compute ' + c('mCompute') + ', exchange ' + c('mExchange') + ')');
    return lines;
  }
  function range(s) { var p = s.split(','); return '[' + p[0] + ', ' + p[1] + ')'; }

  // --- tooltip -------------------------------------------------------------------------------
  function showTip(g, x, y) {
    var r = Number(g.dataset.rank);
    tip.replaceChildren();
    var ranges = 'm ' + range(g.dataset.m) + ' · n ' + range(g.dataset.n) + ' · k ' + range(g.dataset.k);
    if (g.dataset.count) {
      tip.appendChild(el('div', 'tip-title', g.dataset.count + ' ranks: ' + g.dataset.ranks));
      tip.appendChild(el('div', 'tip-ranges', ranges));
      tip.appendChild(el('div', '', 'hosts ' + g.dataset.hosts + '; merged into one box (too many ranks to draw each)'));
    } else {
      tip.appendChild(el('div', 'tip-title', 'rank ' + r + ' · host ' + g.dataset.host + ' · node ' + g.dataset.node));
      tip.appendChild(el('div', 'tip-ranges', ranges));
      tipLines(data.table.rows[byRank[r]], Number(g.dataset.steps)).forEach(function (line) {
        tip.appendChild(el('div', '', line));
      });
    }
    tip.hidden = false;
    var w = tip.offsetWidth, h = tip.offsetHeight;
    var left = x + 16, top = y + 16;
    if (left + w > window.innerWidth - 8) left = Math.max(8, x - w - 16);
    if (top + h > window.innerHeight - 8) top = Math.max(8, y - h - 16);
    tip.style.left = left + 'px';
    tip.style.top = top + 'px';
  }
  var hovered = null;
  function setHover(g) {
    if (hovered === g) return;
    if (hovered) hovered.classList.remove('hover');
    hovered = g;
    if (g) g.classList.add('hover');
  }
  cube.addEventListener('mousemove', function (ev) {
    var g = ev.target.closest ? ev.target.closest('.brick') : null;
    setHover(g);
    if (g) showTip(g, ev.clientX, ev.clientY); else tip.hidden = true;
  });
  cube.addEventListener('mouseleave', function () { setHover(null); tip.hidden = true; });
  cube.addEventListener('click', function (ev) {
    var g = ev.target.closest ? ev.target.closest('.brick') : null;
    if (g) select(Number(g.dataset.rank), true);
  });

  // --- colour mode, explode, peel ------------------------------------------------------------
  var mode = document.getElementById('colour-mode');
  function applyMode() {
    cube.setAttribute('class', 'colour-' + mode.value + (explode.checked ? ' exploded' : ''));
    document.querySelectorAll('.legend').forEach(function (l) { l.hidden = l.dataset.mode !== mode.value; });
  }
  var explode = document.getElementById('explode');
  mode.addEventListener('change', applyMode);
  explode.addEventListener('change', applyMode);
  var bricks = Array.prototype.slice.call(cube.querySelectorAll('.brick'));
  var levels = Array.from(new Set(bricks.map(function (g) { return Number(g.dataset.k0); }))).sort(function (a, b) { return a - b; });
  var peel = document.getElementById('peel');
  var peelText = document.getElementById('peel-text');
  peel.max = String(Math.max(0, levels.length - 1));
  peel.value = peel.max;
  peel.disabled = levels.length < 2;
  function applyPeel() {
    var cut = levels[Number(peel.value)];
    bricks.forEach(function (g) { g.style.display = Number(g.dataset.k0) <= cut ? '' : 'none'; });
    peelText.textContent = Number(peel.value) === levels.length - 1 ? 'all k layers' : 'k layers starting at ≤ ' + cut;
  }
  peel.addEventListener('input', applyPeel);
  applyPeel();
  applyMode();

  // --- per-rank table, rendered a window at a time ---------------------------------------------
  var ROW_H = 22;
  var scroller = document.getElementById('rank-scroll');
  var thead = document.querySelector('#rank-table thead');
  var tbody = document.querySelector('#rank-table tbody');
  var tfoot = document.querySelector('#rank-table tfoot');
  var order = data.table.rows.map(function (_, i) { return i; });
  var sortCol = 0, sortDir = 1, selected = null;
  var hr = el('tr');
  data.table.columns.forEach(function (c, i) {
    var th = el('th', '', c.label);
    th.dataset.col = i;
    th.title = 'sort by ' + c.label;
    th.addEventListener('click', function () { sortBy(i); });
    hr.appendChild(th);
  });
  thead.appendChild(hr);
  var fr = el('tr');
  data.table.max.forEach(function (t, i) {
    var cell = el(i === 0 ? 'th' : 'td', '', i === 0 ? 'max' : t ? t[0] : '');
    if (t) cell.title = 'rank ' + t[1];
    fr.appendChild(cell);
  });
  tfoot.appendChild(fr);

  function sortBy(c) {
    sortDir = sortCol === c ? -sortDir : (c === 0 ? 1 : -1);
    sortCol = c;
    var rows = data.table.rows;
    order.sort(function (a, b) {
      var x = rows[a][c][0], y = rows[b][c][0];
      return (x < y ? -1 : x > y ? 1 : a - b) * sortDir;
    });
    hr.querySelectorAll('th').forEach(function (th, i) { th.className = i === c ? (sortDir > 0 ? 'asc' : 'desc') : ''; });
    render();
  }
  function spacer(h) {
    var tr = el('tr', 'spacer');
    var td = el('td');
    td.colSpan = data.table.columns.length;
    td.style.height = h + 'px';
    tr.appendChild(td);
    return tr;
  }
  function render() {
    var first = Math.max(0, Math.floor(scroller.scrollTop / ROW_H) - 5);
    var count = Math.ceil(scroller.clientHeight / ROW_H) + 10;
    var last = Math.min(order.length, first + count);
    tbody.replaceChildren();
    if (first > 0) tbody.appendChild(spacer(first * ROW_H));
    for (var i = first; i < last; i++) {
      var row = data.table.rows[order[i]];
      var tr = el('tr', row[0][0] === selected ? 'selected' : '');
      tr.dataset.rank = row[0][0];
      row.forEach(function (cell) { tr.appendChild(el('td', '', cell[1])); });
      tbody.appendChild(tr);
    }
    if (last < order.length) tbody.appendChild(spacer((order.length - last) * ROW_H));
  }
  scroller.addEventListener('scroll', render);
  tbody.addEventListener('mouseover', function (ev) {
    var tr = ev.target.closest('tr');
    var r = tr && tr.dataset.rank;
    bricks.forEach(function (g) { g.classList.toggle('hover', g.dataset.rank === r); });
  });
  tbody.addEventListener('mouseleave', function () { bricks.forEach(function (g) { g.classList.remove('hover'); }); });
  function select(r, scroll) {
    selected = r;
    bricks.forEach(function (g) { g.classList.toggle('selected', Number(g.dataset.rank) === r); });
    if (scroll) {
      var pos = order.indexOf(byRank[r]);
      scroller.scrollTop = Math.max(0, pos * ROW_H - scroller.clientHeight / 2);
      document.getElementById('ranks').scrollIntoView({ block: 'nearest' });
    }
    render();
  }
  render();
})();
`;
