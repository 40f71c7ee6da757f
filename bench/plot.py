#!/usr/bin/env python3
"""Draws docs/performance.md's charts from the benches' --json output.

    bench/plot.py [DIR]        (default: docs/perf)

Reads whichever of these exist in DIR and writes the matching SVG next to it:

    forward.json     calima-forward-bench --json        -> forward.svg
    vm-forward.json  calima-vm-bench forward --json     -> vm-forward.svg
    vm-start.json    calima-vm-bench start --json       -> vm-start.svg
    vm-cost.json     calima-vm-bench cost --json        -> vm-cost.svg
    list.json        calima-list-bench --json           -> list.svg

Needs python3 (standard library only) and gnuplot (Debian: apt-get install gnuplot-nox).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile

HEADER = """set terminal svg size 760,420 dynamic font "sans,12" background rgb "white"
set output "{out}"
set title "{title}"
set grid ytics
set key top right
"""

BARS = """set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set yrange [0:*]
"""


def load(d, name):
    p = os.path.join(d, name)
    if not os.path.exists(p):
        return None
    with open(p) as f:
        return json.loads(f.read().strip().splitlines()[-1])


def gnuplot(script, data, tmp):
    for name, rows in data.items():
        with open(os.path.join(tmp, name), "w") as f:
            for r in rows:
                f.write(" ".join(str(x) for x in r) + "\n")
    sp = os.path.join(tmp, "plot.gp")
    with open(sp, "w") as f:
        f.write(script)
    subprocess.run(["gnuplot", sp], check=True, cwd=tmp)


def num(v):
    return 0 if v is None else v


def throughput_chart(j, paths, labels, out, title, tmp):
    cols = [("", "1 stream up"), ("_down", "1 stream down"), ("_4x", "4 streams up"),
            ("_4x_down", "4 streams down")]
    rows = []
    for suffix, name in cols:
        rows.append(['"%s"' % name] + [num(j.get(p + suffix + "_gbps")) for p in paths])
    plots = ", ".join('"t.dat" using %d:xtic(1) title "%s"' % (i + 2, labels[i])
                      for i in range(len(paths)))
    gnuplot(HEADER.format(out=out, title=title) + BARS +
            'set ylabel "Gbit/s"\nplot ' + plots + "\n", {"t.dat": rows}, tmp)


def main():
    d = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "docs/perf")
    if not shutil.which("gnuplot"):
        sys.exit("plot.py: gnuplot not found (apt-get install gnuplot-nox)")
    made = []
    with tempfile.TemporaryDirectory() as tmp:
        j = load(d, "forward.json")
        if j:
            out = os.path.join(d, "forward.svg")
            throughput_chart(j, ["direct", "calima", "openssh"], ["direct", "calima", "ssh -L"],
                             out, "Loopback data plane (calima-forward-bench)", tmp)
            made.append(out)
        j = load(d, "vm-forward.json")
        if j:
            out = os.path.join(d, "vm-forward.svg")
            throughput_chart(j, ["hostfwd", "calima", "ssh"], ["QEMU hostfwd", "calima", "ssh -L"],
                             out, "Through the test guest, TCG (calima-vm-bench forward)", tmp)
            made.append(out)
        j = load(d, "vm-start.json")
        if j:
            out = os.path.join(d, "vm-start.svg")
            rows = [['"start"', j["bare_boot_done_s"], j["calima_start_s"]],
                    ['"stop"', j["bare_stop_s"], j["calima_stop_s"]]]
            gnuplot(HEADER.format(out=out, title="Start and stop of the test guest, medians "
                                  "(calima-vm-bench start)") + BARS +
                    'set ylabel "seconds"\nplot "t.dat" using 2:xtic(1) title "bare QEMU", '
                    '"" using 3 title "limactl"\n', {"t.dat": rows}, tmp)
            made.append(out)
        j = load(d, "vm-cost.json")
        if j:
            out = os.path.join(d, "vm-cost.svg")
            rows = [[r["running"], r["rss_mib"], r["threads"], r["idle_cpu_percent"]]
                    for r in j["rows"]]
            gnuplot(HEADER.format(out=out, title="The supervisor with N running test guests "
                                  "(calima-vm-bench cost)") +
                    'set xlabel "running instances"\nset ylabel "RSS (MiB) / threads"\n'
                    'set y2label "idle CPU (% of a core)"\nset y2tics\nset ytics nomirror\n'
                    'set yrange [0:*]\nset y2range [0:*]\nset key top left\n'
                    'plot "t.dat" using 1:2 with linespoints lw 2 title "RSS MiB", '
                    '"" using 1:3 with linespoints lw 2 title "threads", '
                    '"" using 1:4 axes x1y2 with linespoints lw 2 dt 2 title "idle CPU %"\n',
                    {"t.dat": rows}, tmp)
            made.append(out)
        j = load(d, "list.json")
        if j:
            out = os.path.join(d, "list.svg")
            rows = []
            for r in j["results"]:
                label = '"%d, supervisor %s"' % (r["instances"],
                                                "running" if r["supervisor"] else "stopped")
                rows.append([label, r["floor_ms"], r["list_ms"], r["list_json_ms"]])
            gnuplot(HEADER.format(out=out, title="limactl list (calima-list-bench), medians") +
                    BARS + 'set ylabel "ms"\nset logscale y\nset yrange [1:*]\n'
                    'set key top left\n'
                    'plot "t.dat" using 2:xtic(1) title "floor (cat)", "" using 3 title "list", '
                    '"" using 4 title "list --json"\n', {"t.dat": rows}, tmp)
            made.append(out)
    if not made:
        sys.exit("plot.py: no bench JSON in " + d)
    for m in made:
        print(m)


if __name__ == "__main__":
    main()
