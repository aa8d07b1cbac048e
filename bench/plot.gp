# Grouped bars relative to nginx, drawn by bench.py:
#   gnuplot -e "speed='speed.dat'; cost='cost.dat'; out='latest.png'; n=5; colors='#d62728 ...'" \
#       bench/plot.gp
# n: the number of servers (columns after the scenario); colors: one per server.
# speed.dat: throughput / nginx's per scenario (higher is better);
# cost.dat: CPU per request / nginx's, and idle memory per connection / nginx's (lower is better).
set terminal pngcairo size 1200,1000 font "DejaVu Sans,11" noenhanced
set output out
set datafile missing "NaN"
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set grid ytics
# The scenarios' names slanted, so that long ones do not run into their neighbours; the key
# on a line of its own under them.
set key below horizontal maxrows 1 spacing 1.5
set yrange [0:*]
set xtics nomirror rotate by 30 right
set bmargin 9
set ytics nomirror
do for [i=1:n] { set linetype i lc rgb word(colors, i) }

set multiplot layout 2,1 title "porter vs peers (nginx = 1)"

set title "throughput relative to nginx (higher is better)"
plot for [i=2:n+1] speed using i:xtic(1) title columnheader(i), 1 with lines lc rgb "black" dt 2 notitle

set title "CPU per request, or memory per idle connection, relative to nginx (lower is better)"
plot for [i=2:n+1] cost using i:xtic(1) title columnheader(i), 1 with lines lc rgb "black" dt 2 notitle

unset multiplot
