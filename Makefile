# SPDX-License-Identifier: GPL-2.0
#
# Builds dm-remap.ko against a Rust-enabled kernel build tree.
#
#   make                    against the project's test kernel (built by scripts/build-kernel)
#   make KDIR=/path/to/kernel/build
#   make clean
#
# The kernel must have CONFIG_RUST=y, and the rustc, bindgen and clang given here must be the
# ones it was built with (see docs/install.md). Defaults match scripts/lib/common.sh.

# A machine's toolchain choice, for builds that see no special environment (DKMS rebuilding for
# a new kernel at upgrade time): make variable lines such as `BINDGEN ?= /opt/bindgen/bin/bindgen`.
# With `?=` there, the environment and the command line still win over it.
DM_REMAP_BUILD_CONF ?= /etc/dm-remap/build.conf
-include $(DM_REMAP_BUILD_CONF)

KDIR ?= $(shell scripts/build-kernel 2>/dev/null)
LLVM_BIN ?= /usr/lib/llvm-19/bin
KRUSTC ?= /usr/bin/rustc
RUST_LIB_SRC ?= $(firstword $(wildcard /usr/src/rustc-$(shell $(KRUSTC) --version 2>/dev/null | cut -d' ' -f2)/library))
DM_REMAP_CACHE ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/dm-remap
BINDGEN ?= $(firstword $(wildcard $(DM_REMAP_CACHE)/bindgen-*/bin/bindgen) bindgen)
KMAKE = $(MAKE) -C $(KDIR) M=$(CURDIR) ARCH=x86_64 LLVM=1 RUSTC=$(KRUSTC) \
	HOSTRUSTC=$(KRUSTC) RUST_LIB_SRC=$(RUST_LIB_SRC) BINDGEN=$(BINDGEN) \
	LIBCLANG_PATH=$(LLVM_BIN)/../lib
PATH := $(LLVM_BIN):$(PATH)
export PATH

all: modules

modules: preflight

modules clean:
	@test -n "$(KDIR)" || { echo "KDIR is not set and the test kernel is not built (scripts/build-kernel)"; exit 1; }
	+$(KMAKE) $@

# One clear sentence when the kernel or the toolchain cannot build a Rust module (see the script).
preflight:
	@KRUSTC='$(KRUSTC)' BINDGEN='$(BINDGEN)' LLVM_BIN='$(LLVM_BIN)' bash scripts/preflight '$(KDIR)'

.PHONY: all modules clean preflight
