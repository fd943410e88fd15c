# One flag, one meaning: the short options of every program's --help
# against the table of cs(7); the letters each program accepts (getopt)
# against its help and the table's older spellings; the older spellings
# named in each man page's HISTORY; and the renamed options doing what
# their older spellings did.
. tests/lib.sh
command -v python3 > /dev/null || { echo "skip: no python3"; exit 0; }
progs=$(for f in cmd/cs-*.c; do f=${f#cmd/}; echo "${f%.c}"; done)
for p in $progs; do [ -x "./$p" ] || die "$p not built"; done

# help PROG: its --help; probe PROG LETTER: how it takes -LETTER (stdin
# empty): "unknown", or "known" (run, or refused for another reason).
mkdir "$T/help" "$T/probe"
for p in $progs; do
	"$p" --help > "$T/help/$p" || die "$p --help"
	case $p in cs-mask) sub=split ;; cs-vocab) sub=build ;; *) sub= ;; esac
	for l in a b c d e f g h i j k l m n o p q r s t u v w x y z \
		A B C D E F G H I J K L M N O P Q R S T U V W X Y Z; do
		LC_ALL=C timeout 10 "$p" $sub "-$l" < /dev/null > /dev/null 2> "$T/err"
		rc=$?
		[ $rc -lt 124 ] || die "$p -$l: exit $rc"
		if grep -q "invalid option -- '$l'" "$T/err"; then
			echo "$l unknown"
		else
			echo "$l known"
		fi
	done > "$T/probe/$p"
done

python3 - "$T" man/cs.7 $progs <<'EOF' || die "the option table (man/cs.7) and the programs disagree"
import re, sys
T, page, progs = sys.argv[1], sys.argv[2], sys.argv[3:]
fail = []
def bad(msg):
    fail.append(msg)

def section(text, begin, end):
    return text.split(begin, 1)[1].split(end, 1)[0]

man = open(page).read()
table = {}   # letter -> (long names, programs)
for row in section(man, '.\\" flag-table-begin', '.\\" flag-table-end').strip().splitlines():
    short, longs, who, meaning = [c.strip() for c in row[len(".It "):].split(" Ta ")]
    letter = re.fullmatch(r"Fl (\w)", short)[1]
    assert letter not in table, "letter twice in the table: " + letter
    names = re.findall(r"Fl Fl ([\w-]+)", longs)
    table[letter] = (set(names), set(progs) if who == "all" else set(who.split()))
old = {}     # program -> {letter: long name}
for row in section(man, '.\\" old-spellings-begin', '.\\" old-spellings-end').strip().splitlines():
    prog, short, now = [c.strip() for c in row[len(".It "):].split(" Ta ")]
    letter = re.fullmatch(r"Fl (\w)", short)[1]
    old.setdefault(prog, {})[letter] = re.findall(r"Fl Fl ([\w-]+)", now)[0]

shows = {}   # program -> {letter: long name} from --help
longs = {}   # program -> {long name: letter or None}
for p in progs:
    shows[p], longs[p] = {}, {}
    for line in open(f"{T}/help/{p}"):
        m = re.match(r"\s+-(\w), --([\w-]+)", line)
        if m:
            if m[1] in shows[p]:
                bad(f"{p} --help: -{m[1]} twice")
            shows[p][m[1]] = m[2]
            longs[p][m[2]] = m[1]
            continue
        m = re.match(r"\s+--([\w-]+)", line)
        if m:
            longs[p].setdefault(m[1], None)

# 1. every short option shown is the table's, in a program the table lists
for p in progs:
    for letter, name in sorted(shows[p].items()):
        if letter not in table:
            bad(f"{p}: -{letter} (--{name}) is not in the table")
        elif name not in table[letter][0]:
            bad(f"{p}: -{letter} is --{name}, the table's -{letter} is "
                + ", ".join("--" + n for n in sorted(table[letter][0])))
        elif p not in table[letter][1]:
            bad(f"{p}: -{letter} --{name}, but the table does not list {p}")
# 2. the table lists no program that lacks the letter
for letter, (names, who) in sorted(table.items()):
    for p in sorted(who):
        if p not in progs:
            bad(f"table: -{letter}: no program {p}")
        elif letter not in shows[p]:
            bad(f"table: -{letter} in {p}, whose --help lacks it")
# 3. a long option with a short form has it wherever it appears
for p in progs:
    for name, letter in longs[p].items():
        for q in progs:
            other = longs[q].get(name, "absent")
            if letter and other != "absent" and other != letter:
                bad(f"--{name}: -{letter} in {p}, "
                    + (f"-{other}" if other else "no short form") + f" in {q}")
# 4. the letters getopt takes are those of --help and the older spellings
for p in progs:
    known = {l for l, how in (x.split() for x in open(f"{T}/probe/{p}")) if how == "known"}
    olds = old.get(p, {})
    for l in sorted(known - set(shows[p]) - set(olds)):
        bad(f"{p} takes -{l}, which neither its --help nor the older spellings name")
    for l in sorted((set(shows[p]) | set(olds)) - known):
        bad(f"{p} refuses -{l}")
    for l, name in sorted(olds.items()):
        if l in shows[p]:
            bad(f"{p}: older spelling -{l} clashes with -{l} --{shows[p][l]}")
        if name not in longs[p]:
            bad(f"{p}: older spelling -{l} of --{name}, which --help lacks")
    # 5. each man page names its older spellings in HISTORY
    page = open(f"man/{p}.1").read()
    hist = page.split(".Sh HISTORY", 1)[1].split("\n.Sh ", 1)[0] if ".Sh HISTORY" in page else ""
    items = hist.split("\n.It ")[1:]
    for l, name in sorted(olds.items()):
        if not any(re.match(rf"Fl {l}\b", i) and re.search(rf"Fl (Fl |-){name}\b", i) for i in items):
            bad(f"man/{p}.1: HISTORY does not name -{l} (--{name})")
for msg in fail:
    print("not ok:", msg, file=sys.stderr)
sys.exit(1 if fail else 0)
EOF
ok "short options: one meaning each, as the table of cs(7) says"

# The renamed options do what their older spellings do.
printf 'user:seq:string\titem:event:string\tqty:event:int64\n' > "$T/a.txt"
awk 'BEGIN { srand(5); for (u = 0; u < 60; u++) { n = 2 + u % 7
	for (j = 0; j < n; j++) printf "u%d\tp%d\t%d\n", u, int(rand() * 25), j } }' >> "$T/a.txt"
cs-cat -r -o "$T/a.cseq" "$T/a.txt" || die "cs-cat -r"
same() { # same WHAT CMD1 -- CMD2: both succeed with the same output
	what=$1; shift
	a= b=
	while [ "$1" != -- ]; do a="$a $1"; shift; done; shift
	b="$*"
	eval "$a" > "$T/o1" 2> /dev/null || die "$what: $a"
	eval "$b" > "$T/o2" 2> /dev/null || die "$what: $b"
	[ -s "$T/o1" ] || die "$what: no output"
	cmp -s "$T/o1" "$T/o2" || die "$what: '$a' and '$b' differ"
}
A=$T/a.cseq
same "cs-cat -J" cs-cat -j $A -- cs-cat -J $A
same "cs-cat -J --info" cs-cat -i -j $A -- cs-cat --info -J $A
same "cs-cat --meta" cs-cat -m $A -- cs-cat --meta $A
same "cs-stats -J" cs-stats -q -j $A -- cs-stats -q -J $A
same "cs-stats -k" cs-stats -q -n 3 $A -- cs-stats -q -k 3 $A
same "cs-stats --top" cs-stats -q -k 2 $A -- cs-stats -q --top 2 $A
cs-vocab build -q -o "$T/v.txt" $A || die "vocab build"
same "cs-vocab --max-size" cs-vocab build -q -s 5 $A -- cs-vocab build -q --max-size 5 $A
same "cs-vocab --kcore" cs-vocab build -q -k 2 $A -- cs-vocab build -q --kcore 2 $A
same "cs-vocab info -J" cs-vocab info --json "$T/v.txt" -- cs-vocab info -J "$T/v.txt"
cs-vocab encode -q -v "$T/v.txt" -o "$T/e.cseq" $A || die "encode"
same "cs-mask -l" cs-mask split -q --min-len 4 -o $T/s1 $A \&\& cat $T/s1.*.cseq -- \
	cs-mask split -q -l 4 -o $T/s2 $A \&\& cat $T/s2.*.cseq
expect_eq "$(info "$T/s1.test.cseq" records)" "$(awk -F'\t' 'NR > 1 { n[$1]++ }
	END { for (u in n) k += n[u] >= 4; print k }' "$T/a.txt")" "cs-mask -l 4: histories of 4 or more"
# cs-ingest: -l (was -m), --collapse (-c), --keep (-k), -H
awk -F'\t' 'NR > 1 { print $1 "," $2 "," $3 }' "$T/a.txt" > "$T/a.csv"
ing() { cs-ingest -q -j 1 --no-header -u 1 -i 2 "$@" "$T/a.csv"; }
same "cs-ingest -l" ing -m 5 -k q=3:int64 -c -- ing -l 5 --keep q=3:int64 --collapse
same "cs-ingest -H" ing -- cs-ingest -q -j 1 -H -u 1 -i 2 "$T/a.csv"
ing -l 5 -o "$T/l5.cseq" || die "cs-ingest -l 5"
expect_eq "$(info "$T/l5.cseq" records)" "$(awk -F'\t' 'NR > 1 { n[$1]++ }
	END { for (u in n) k += n[u] >= 5; print k }' "$T/a.txt")" "cs-ingest -l 5: sequences of 5 or more events"
ok "older spellings: cs-cat -j -i -m, cs-stats -j -n, cs-vocab -s -k, cs-ingest -m -c -k"

# cs-recommend --text (was -t), cs-eval -x, cs-train -n
cs-mask split -q -o "$T/s" "$T/e.cseq" || die "split"
cs-mask next -q -o "$T/n.cseq" "$T/s.train.cseq" || die "next"
tr() { cs-train -q -v "$T/v.txt" --hidden 8 --layers 1 --heads 1 --max-len 8 --epochs 1 -j 1 \
	--loss sampled "$@" "$T/n.cseq"; }
tr -n 7 -o "$T/m1.bin" && tr --negatives 7 -o "$T/m2.bin" || die "cs-train -n"
cmp -s "$T/m1.bin" "$T/m2.bin" || die "cs-train -n and --negatives differ"
tr -n 3 -o "$T/m3.bin" || die "cs-train -n 3"
cmp -s "$T/m1.bin" "$T/m3.bin" && die "cs-train -n: the number of negatives makes no difference"
same "cs-eval -x" cs-eval -q -m "$T/m1.bin" --exclude-seen "$T/s.test.cseq" -- \
	cs-eval -q -m "$T/m1.bin" -x "$T/s.test.cseq"
cs-eval -q -m "$T/m1.bin" "$T/s.test.cseq" | cmp -s - "$T/o1" && die "cs-eval -x: no difference"
same "cs-eval -J" cs-eval -q -m "$T/m1.bin" --json "$T/s.test.cseq" -- \
	cs-eval -q -m "$T/m1.bin" -J "$T/s.test.cseq"
printf 'a\tp1 p2 p3\n' > "$T/h.txt"
same "cs-recommend --text" cs-recommend -q -m "$T/m1.bin" -v "$T/v.txt" -t "$T/h.txt" -- \
	cs-recommend -q -m "$T/m1.bin" -v "$T/v.txt" --text "$T/h.txt"
ok "cs-train -n, cs-eval -x -J, cs-recommend --text (-t)"
