#!/usr/bin/env bash
# Run the compiled stream core's workload under valgrind and fail on leaks in the extension.
#
# Usage:
#   tools/valgrind.sh [--log FILE] [--keep-log] [-- EXTRA VALGRIND ARGS...]
#   tools/valgrind.sh --parse LOG     (only summarise an existing valgrind log)
#
# Environment:
#   PYTHON              the interpreter to run (default: python3)
#   PYTHONPATH          as usual; when unset and src/fastevents holds a compiled
#                       _stream_c extension, src/ is used (an in-place build), else the
#                       installed package is used
#   VALGRIND_PYTHON_SUPP  CPython's Misc/valgrind-python.supp, if you have it (otherwise
#                       the usual locations are searched; it is optional with
#                       PYTHONMALLOC=malloc)
#   FE_VALGRIND_SCALE   multiplies the workload's loop counts (default 1)
#
# Needs valgrind (Debian/Ubuntu: apt-get install -y valgrind). Runs
# tools/valgrind_workload.py with PYTHONMALLOC=malloc (so every Python allocation is a
# malloc valgrind can follow) under
#   valgrind --leak-check=full --show-leak-kinds=definite,possible --num-callers=50
# with tools/valgrind.supp and CPython's suppressions when found, then prints a summary:
# definitely lost bytes in total and in blocks whose allocation stack has `_stream_c` in it.
#
# Exit status: 0 when clean; 1 when a definitely lost block, or any valgrind error
# (invalid read/write, use of uninitialised memory, bad free), has `_stream_c` in its
# stack; 2 when the workload itself failed (it also checks that every event was freed);
# 3 on a usage or setup problem. Leaks elsewhere (CPython's own at exit) are reported, not
# fatal.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
python=${PYTHON:-python3}
log=""
keep_log=0
parse_only=0
extra=()
while [ $# -gt 0 ]; do
    case "$1" in
        --log) log=$2; keep_log=1; shift 2 ;;
        --keep-log) keep_log=1; shift ;;
        --parse) log=$2; keep_log=1; parse_only=1; shift 2 ;;
        --) shift; extra=("$@"); break ;;
        -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
        *) echo "valgrind.sh: unknown argument: $1" >&2; exit 3 ;;
    esac
done

rc=0
if [ "$parse_only" -eq 0 ]; then
command -v valgrind >/dev/null 2>&1 || {
    echo "valgrind.sh: valgrind not found (apt-get install -y valgrind)" >&2; exit 3; }

# Use the in-place build only when it was built for this very interpreter.
ext_suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
if [ -z "${PYTHONPATH:-}" ] && [ -e "$root/src/fastevents/_stream_c$ext_suffix" ]; then
    export PYTHONPATH="$root/src"
fi
"$python" -c 'import fastevents as fe, sys; sys.exit(fe.CEventStream is None)' || {
    echo "valgrind.sh: the compiled core does not import with $python (PYTHONPATH=${PYTHONPATH:-})" >&2
    exit 3; }

supp=(--suppressions="$here/valgrind.supp")
cpython_supp=${VALGRIND_PYTHON_SUPP:-}
if [ -z "$cpython_supp" ]; then
    srcdir=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("srcdir") or "")')
    for cand in "$srcdir/Misc/valgrind-python.supp" \
                /usr/share/doc/python3*/valgrind-python.supp* \
                /usr/lib/valgrind/python3.supp /usr/lib/valgrind/python.supp; do
        if [ -f "$cand" ]; then cpython_supp=$cand; break; fi
    done
fi
if [ -n "$cpython_supp" ] && [ -f "$cpython_supp" ]; then
    case "$cpython_supp" in
        *.gz) tmp_supp=$(mktemp); gunzip -c "$cpython_supp" > "$tmp_supp"; cpython_supp=$tmp_supp ;;
    esac
    supp+=(--suppressions="$cpython_supp")
    echo "valgrind.sh: CPython suppressions: $cpython_supp"
else
    echo "valgrind.sh: no CPython suppressions found (fine with PYTHONMALLOC=malloc)"
fi

# The real binary, not a wrapper script (pyenv shims, venv launchers): valgrind follows
# only the process it starts.
python_exe=$("$python" -c 'import sys; print(sys.executable)')

if [ -z "$log" ]; then
    log=$(mktemp "${TMPDIR:-/tmp}/fastevents-valgrind.XXXXXX.log")
fi

echo "valgrind.sh: running the workload under valgrind (this takes a minute or two)..."
PYTHONMALLOC=malloc valgrind \
    --leak-check=full --show-leak-kinds=definite,possible --errors-for-leak-kinds=definite \
    --num-callers=50 --track-origins=no --child-silent-after-fork=yes \
    "${supp[@]}" --log-file="$log" ${extra[@]+"${extra[@]}"} \
    "$python_exe" "$here/valgrind_workload.py" || rc=$?
fi

status=0
"$python" - "$log" "$rc" <<'PY' || status=$?
import re, sys

log_path, rc = sys.argv[1], int(sys.argv[2])
text = open(log_path, errors="replace").read()
# Every message line is "==PID== ..."; a record ends at a line with nothing after "==PID==".
lines = [re.sub(r"^==\d+== ?", "", l) for l in text.splitlines() if re.match(r"^==\d+==", l)]
records, cur = [], []
for line in lines:
    if line.strip():
        cur.append(line)
    elif cur:
        records.append(cur)
        cur = []
if cur:
    records.append(cur)

def num(s):
    return int(s.replace(",", ""))

# "N bytes in B blocks are definitely lost", or "N (D direct, I indirect) bytes ...":
# valgrind's own totals count the direct bytes, and so does this summary.
leak_re = re.compile(r"([\d,]+) (?:\(([\d,]+) direct, [\d,]+ indirect\) )?bytes in ([\d,]+) blocks are (definitely|possibly) lost")
ext = lambda rec: any("_stream_c" in l for l in rec)
total = {"definitely": [0, 0], "possibly": [0, 0]}
from_ext = {"definitely": [0, 0], "possibly": [0, 0]}
ext_errors, ext_leaks = [], []
for rec in records:
    m = leak_re.search(rec[0])
    if m:
        kind = m.group(4)
        b, n = num(m.group(2) or m.group(1)), num(m.group(3))
        total[kind][0] += b; total[kind][1] += n
        if ext(rec):
            from_ext[kind][0] += b; from_ext[kind][1] += n
            if kind == "definitely":
                ext_leaks.append(rec)
    elif (rec[0].startswith(("Invalid ", "Conditional jump", "Use of uninitialised",
                             "Syscall param", "Mismatched free", "Source and destination overlap"))
          and ext(rec)):
        ext_errors.append(rec)

summary = re.search(r"ERROR SUMMARY: ([\d,]+) errors from ([\d,]+) contexts", text)
if "HEAP SUMMARY" not in text:
    print("valgrind.sh: no HEAP SUMMARY in the log: did valgrind run python itself?", log_path)
    sys.exit(3)
print("valgrind.sh: log:", log_path)
print("valgrind.sh: workload exit code:", rc)
print("valgrind.sh: definitely lost: %d bytes in %d blocks in total, %d bytes in %d blocks from _stream_c"
      % (*total["definitely"], *from_ext["definitely"]))
print("valgrind.sh: possibly lost:   %d bytes in %d blocks in total, %d bytes in %d blocks from _stream_c"
      % (*total["possibly"], *from_ext["possibly"]))
print("valgrind.sh: memory errors with _stream_c in the stack:", len(ext_errors))
if summary:
    print("valgrind.sh: valgrind's", summary.group(0), "(CPython's own included)")
for rec in (ext_leaks + ext_errors)[:20]:
    print("\n".join("    " + l for l in rec[:30]))
    print()
if rc != 0:
    sys.exit(2)
sys.exit(1 if (ext_leaks or ext_errors) else 0)
PY
if [ "$keep_log" -eq 0 ] && [ "$status" -eq 0 ]; then
    rm -f "$log"
fi
exit "$status"
