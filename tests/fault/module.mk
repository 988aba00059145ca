# tests/fault/module.mk — the fault-injection shim used by the hardening tests.
# Built without the sanitizers even when SANITIZE=1: it is LD_PRELOADed into
# programs that may or may not carry the ASan runtime, and must not bring its own.
HM_FAULT_SO := $(B)/libhm_fault.so
SOS += $(HM_FAULT_SO)

$(HM_FAULT_SO): tests/fault/hm_fault.c $(FLAGS_STAMP)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_BASE) -O2 -shared -Wl,-z,relro,-z,now -o $@ $< -ldl
