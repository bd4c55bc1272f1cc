/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What differs between the supported kernel series on the C side (the Rust side is compat.rs;
 * docs/kernels.md lists both). Only helpers.c and bindings_helper.h include it.
 */
#ifndef DM_REMAP_COMPAT_H
#define DM_REMAP_COMPAT_H

#include <linux/version.h>
#include <linux/workqueue.h>

/*
 * 6.17 added WQ_PERCPU, and 7.x warns (a WARNING: trace) about a workqueue that names neither
 * WQ_PERCPU nor WQ_UNBOUND. Per-CPU is what alloc_workqueue gave before; keep it.
 */
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 17, 0)
#define DMR_WQ_PERCPU WQ_PERCPU
#else
#define DMR_WQ_PERCPU 0
#endif

#endif
