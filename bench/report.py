#!/usr/bin/env python3
"""Renders bench/run.sh's raw results (TSV) as markdown tables.

    report.py RESULTS.tsv [MEM.tsv]

RESULTS.tsv columns (tab-separated, with a header line):
  scenario  title  kind  client  rep  requests  body_size  wall_s  user_s
  sys_s  maxrss_kib
kind is "rps" (small requests: report req/s) or "bulk" (report GB/s).
wall_s is the client's own measurement of the load phase (h2load "finished
in", h2pool/curl_bench "wall_s"); user_s, sys_s and maxrss_kib come from
/usr/bin/time around the whole client process.

Every figure is the median over the repetitions, taken per figure.
"""
import statistics
import sys
from collections import OrderedDict

CLIENTS = ["h2load", "libcurl", "h2pool"]


def fmt_rate(v):
    if v >= 100000:
        return f"{v / 1000:.0f}k"
    if v >= 10000:
        return f"{v / 1000:.1f}k"
    return f"{v:.0f}"


def fmt_ratio(v):
    return f"{v:.2f}x"


def main():
    rows = []
    with open(sys.argv[1]) as f:
        header = f.readline().rstrip("\n").split("\t")
        for line in f:
            if line.strip():
                rows.append(dict(zip(header, line.rstrip("\n").split("\t"))))
    scen = OrderedDict()
    for r in rows:
        s = scen.setdefault(r["scenario"], {"title": r["title"],
                                            "kind": r["kind"], "by": {}})
        n = int(r["requests"])
        wall = float(r["wall_s"])
        cpu = float(r["user_s"]) + float(r["sys_s"])
        fig = {
            "rps": n / wall if wall > 0 else 0.0,
            "gbps": n * int(r["body_size"]) / wall / 1e9 if wall > 0 else 0.0,
            "cpu_us": cpu * 1e6 / n,
            "rss_mib": int(r["maxrss_kib"]) / 1024.0,
        }
        s["by"].setdefault(r["client"], []).append(fig)
        stall = float(r.get("stall_s", 0) or 0)
        if stall > 0:
            s.setdefault("stalls", []).append(f"{r['client']} rep {r['rep']}: {stall:.1f} s")

    out = []
    summary = []
    for key, s in scen.items():
        med = {}
        for c, figs in s["by"].items():
            med[c] = {k: statistics.median(f[k] for f in figs)
                      for k in figs[0]}
            med[c]["reps"] = len(figs)
        bulk = s["kind"] == "bulk"
        tput = "gbps" if bulk else "rps"
        out.append(f"### {s['title']}\n")
        out.append(f"| client | {'GB/s' if bulk else 'req/s'} | "
                   "CPU us/req | peak RSS MiB | runs |")
        out.append("|---|---:|---:|---:|---:|")
        for c in CLIENTS:
            if c not in med:
                continue
            m = med[c]
            t = f"{m['gbps']:.2f}" if bulk else fmt_rate(m["rps"])
            out.append(f"| {c} | {t} | {m['cpu_us']:.1f} | "
                       f"{m['rss_mib']:.1f} | {m['reps']} |")
        if "h2pool" in med:
            h = med["h2pool"]
            parts = []
            for ref in ("h2load", "libcurl"):
                if ref in med and med[ref][tput] > 0 and med[ref]["cpu_us"] > 0:
                    parts.append(
                        f"vs {ref}: throughput {fmt_ratio(h[tput] / med[ref][tput])}, "
                        f"CPU/req {fmt_ratio(h['cpu_us'] / med[ref]['cpu_us'])}")
            out.append("")
            out.append("h2pool " + "; ".join(parts) +
                       " (throughput > 1 and CPU/req < 1 favour h2pool)")
            row = [key, f"{h['gbps']:.2f} GB/s" if bulk else fmt_rate(h["rps"]),
                   f"{h['cpu_us']:.1f}"]
            for ref in ("h2load", "libcurl"):
                if ref in med and med[ref][tput] > 0:
                    row += [fmt_ratio(h[tput] / med[ref][tput]),
                            fmt_ratio(h["cpu_us"] / med[ref]["cpu_us"])]
                else:
                    row += ["-", "-"]
            summary.append(row)
        if s.get("stalls"):
            out.append("")
            out.append("Stalls (no progress for >= 1 s, ended by the server's idle "
                       "timeout; libcurl 7.88 bug, see README): " +
                       ", ".join(s["stalls"]))
        out.append("")

    print("### Summary: h2pool relative to h2load and libcurl (medians)\n")
    print("| scenario | h2pool throughput | h2pool CPU us/req | "
          "tput / h2load | CPU / h2load | tput / libcurl | CPU / libcurl |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for row in summary:
        print("| " + " | ".join(row) + " |")
    print()
    print("\n".join(out))

    if len(sys.argv) > 2 and sys.argv[2]:
        with open(sys.argv[2]) as f:
            lines = [l.rstrip("\n") for l in f if l.strip()]
        if len(lines) > 1:
            print("### Memory (h2pool, mem_probe)\n")
            hdr = lines[0].split("\t")
            print("| " + " | ".join(hdr) + " |")
            print("|" + "---|" * len(hdr))
            for l in lines[1:]:
                print("| " + " | ".join(l.split("\t")) + " |")
            print()


if __name__ == "__main__":
    main()
