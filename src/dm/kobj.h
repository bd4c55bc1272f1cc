/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sysfs folders and the /proc summary file of a target type, for src/dm/sysfs.rs.
 *
 * A folder kind (struct dmr_folder_kind) is a kobj_type with a fixed list of attribute files
 * whose reads and writes go to two callbacks with the folder's owner pointer and the file's
 * index. Folders of one kind are kept in a list, which the /proc file walks. The 6.12 kernel
 * crate has no sysfs or procfs abstractions; this is the smallest C that gives the Rust side
 * plain callbacks.
 */
#ifndef DM_REMAP_KOBJ_H
#define DM_REMAP_KOBJ_H

#include <linux/kobject.h>
#include <linux/seq_file.h>
#include <linux/types.h>

typedef ssize_t (*dmr_show_fn)(void *owner, unsigned int index, char *buf);
typedef ssize_t (*dmr_store_fn)(void *owner, unsigned int index, const char *buf, size_t len);
typedef void (*dmr_proc_header_fn)(struct seq_file *m, unsigned int folders);
typedef void (*dmr_proc_folder_fn)(void *owner, struct seq_file *m);

/* One attribute file: its name (a static string) and whether root may write it. */
struct dmr_file_spec {
	const char *name;
	bool writable;
};

struct dmr_folder_kind;
struct dmr_folder;

struct dmr_folder_kind *dmr_folder_kind_new(const struct dmr_file_spec *files, unsigned int n,
					    dmr_show_fn show, dmr_store_fn store);
void dmr_folder_kind_free(struct dmr_folder_kind *kind);
unsigned int dmr_folder_kind_count(struct dmr_folder_kind *kind);

struct dmr_folder *dmr_folder_add(struct dmr_folder_kind *kind, struct dmr_folder *parent,
				  const char *name, void *owner);
void dmr_folder_remove(struct dmr_folder *folder);

struct proc_dir_entry *dmr_proc_create(const char *name, struct dmr_folder_kind *kind,
				       dmr_proc_header_fn header, dmr_proc_folder_fn folder);
void dmr_proc_remove(struct proc_dir_entry *entry);

#endif
