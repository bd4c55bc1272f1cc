// SPDX-License-Identifier: GPL-2.0
/* See kobj.h. */
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/proc_fs.h>
#include <linux/slab.h>
#include <linux/sysfs.h>
#include "kobj.h"

struct dmr_folder_kind {
	struct kobj_type ktype;
	struct attribute_group group;
	const struct attribute_group *groups[2];
	dmr_show_fn show;
	dmr_store_fn store;
	dmr_proc_header_fn proc_header;
	dmr_proc_folder_fn proc_folder;
	struct mutex lock; /* members, count; held while /proc walks them */
	struct list_head members;
	unsigned int count;
	struct attribute **attr_list; /* NULL-terminated, for the group */
	struct attribute attrs[];
};

struct dmr_folder {
	struct kobject kobj;
	struct dmr_folder_kind *kind;
	void *owner;
	struct list_head node;
};

static ssize_t dmr_attr_show(struct kobject *kobj, struct attribute *attr, char *buf)
{
	struct dmr_folder *f = container_of(kobj, struct dmr_folder, kobj);

	return f->kind->show(f->owner, attr - f->kind->attrs, buf);
}

static ssize_t dmr_attr_store(struct kobject *kobj, struct attribute *attr, const char *buf,
			      size_t len)
{
	struct dmr_folder *f = container_of(kobj, struct dmr_folder, kobj);

	return f->kind->store(f->owner, attr - f->kind->attrs, buf, len);
}

static const struct sysfs_ops dmr_sysfs_ops = {
	.show = dmr_attr_show,
	.store = dmr_attr_store,
};

static void dmr_folder_release(struct kobject *kobj)
{
	kfree(container_of(kobj, struct dmr_folder, kobj));
}

struct dmr_folder_kind *dmr_folder_kind_new(const struct dmr_file_spec *files, unsigned int n,
					    dmr_show_fn show, dmr_store_fn store)
{
	struct dmr_folder_kind *kind;
	unsigned int i;

	kind = kzalloc(struct_size(kind, attrs, n), GFP_KERNEL);
	if (!kind)
		return NULL;
	kind->attr_list = kcalloc(n + 1, sizeof(*kind->attr_list), GFP_KERNEL);
	if (!kind->attr_list) {
		kfree(kind);
		return NULL;
	}
	for (i = 0; i < n; i++) {
		/* Attributes allocated at run time need a lockdep key of their own. */
		sysfs_attr_init(&kind->attrs[i]);
		kind->attrs[i].name = files[i].name;
		kind->attrs[i].mode = files[i].writable ? 0644 : 0444;
		kind->attr_list[i] = &kind->attrs[i];
	}
	kind->group.attrs = kind->attr_list;
	kind->groups[0] = &kind->group;
	kind->ktype.sysfs_ops = &dmr_sysfs_ops;
	kind->ktype.release = dmr_folder_release;
	kind->ktype.default_groups = kind->groups;
	kind->show = show;
	kind->store = store;
	mutex_init(&kind->lock);
	INIT_LIST_HEAD(&kind->members);
	return kind;
}

/* Every folder of the kind must have been removed. */
void dmr_folder_kind_free(struct dmr_folder_kind *kind)
{
	if (!kind)
		return;
	WARN_ON(!list_empty(&kind->members));
	mutex_destroy(&kind->lock);
	kfree(kind->attr_list);
	kfree(kind);
}

unsigned int dmr_folder_kind_count(struct dmr_folder_kind *kind)
{
	unsigned int count;

	mutex_lock(&kind->lock);
	count = kind->count;
	mutex_unlock(&kind->lock);
	return count;
}

/*
 * Adds folder name under parent (under /sys/kernel if NULL) with the kind's files, whose
 * callbacks receive owner. Returns NULL on failure (no memory, or the name exists).
 */
struct dmr_folder *dmr_folder_add(struct dmr_folder_kind *kind, struct dmr_folder *parent,
				  const char *name, void *owner)
{
	struct dmr_folder *f;

	f = kzalloc(sizeof(*f), GFP_KERNEL);
	if (!f)
		return NULL;
	f->kind = kind;
	f->owner = owner;
	if (kobject_init_and_add(&f->kobj, &kind->ktype, parent ? &parent->kobj : kernel_kobj,
				 "%s", name)) {
		kobject_put(&f->kobj); /* frees f */
		return NULL;
	}
	mutex_lock(&kind->lock);
	list_add_tail(&f->node, &kind->members);
	kind->count++;
	mutex_unlock(&kind->lock);
	kobject_uevent(&f->kobj, KOBJ_ADD);
	return f;
}

/*
 * Removes the folder. When this returns no callback for it runs or will run (kobject_del
 * drains the files' active users, the kind's lock excludes the /proc walk), so its owner may
 * go away.
 */
void dmr_folder_remove(struct dmr_folder *f)
{
	if (!f)
		return;
	mutex_lock(&f->kind->lock);
	list_del(&f->node);
	f->kind->count--;
	mutex_unlock(&f->kind->lock);
	kobject_uevent(&f->kobj, KOBJ_REMOVE);
	kobject_del(&f->kobj);
	kobject_put(&f->kobj);
}

static int dmr_proc_show(struct seq_file *m, void *v)
{
	struct dmr_folder_kind *kind = m->private;
	struct dmr_folder *f;

	mutex_lock(&kind->lock);
	kind->proc_header(m, kind->count);
	list_for_each_entry(f, &kind->members, node)
		kind->proc_folder(f->owner, m);
	mutex_unlock(&kind->lock);
	return 0;
}

/* /proc/name: a header, then what folder writes for each folder of the kind. */
struct proc_dir_entry *dmr_proc_create(const char *name, struct dmr_folder_kind *kind,
				       dmr_proc_header_fn header, dmr_proc_folder_fn folder)
{
	kind->proc_header = header;
	kind->proc_folder = folder;
	return proc_create_single_data(name, 0444, NULL, dmr_proc_show, kind);
}

/* Waits for readers in progress. */
void dmr_proc_remove(struct proc_dir_entry *entry)
{
	proc_remove(entry);
}
