# bench/lib/module.mk — helpers the benchmarks share (not installed).
# spawntime: times fresh processes without Python's fork cost (see its header).
SPAWNTIME := $(B)/bench/spawntime

$(SPAWNTIME): bench/lib/spawntime.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -o $@ $< 

BENCH_TOOLS += $(SPAWNTIME)
