// SPDX-License-Identifier: (MIT OR GPL-2.0)
/*
 * Socket holders for the ticks of watch and export: the holders of a few
 * watched sockets, found again every tick at a fraction of a full scan.
 *
 * User space writes the watch set (socket inodes) into `watch` when it
 * changes, and `tick` before every pass. The program runs once per pass
 * (the link is scoped to sockmap's own process; of its threads, the main
 * one does the work) and walks every process
 * itself with the open-coded task iterator (kernel >= 6.7), which skips
 * the per-task pid lookups of the iter/task walk:
 * - the first pass after the set was written reads every fd table and
 *   finds each watched inode's `struct file` (a socket has exactly one),
 *   storing the pointer in the map; user space never sees it;
 * - later passes read only the tables that can have changed: those of the
 *   holders (a filter of their pids in `tick`) and of processes started
 *   since the previous pass (a fork of a holder), comparing the slots
 *   with the stored pointers without touching any file. A socket passed
 *   to an older process (SCM_RIGHTS) shows at the next full scan.
 *
 * The tables are read under RCU without the files lock, and a stored
 * pointer may name a file freed and reused since: user space confirms
 * every hit with readlinkat(/proc/PID/fd/FD), as for the full scan.
 */
#include "vmlinux.h"
#include "holders.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __ksym;
extern int bpf_iter_task_new(struct bpf_iter_task *it, struct task_struct *task,
			     unsigned int flags) __ksym;
extern struct task_struct *bpf_iter_task_next(struct bpf_iter_task *it) __ksym;
extern void bpf_iter_task_destroy(struct bpf_iter_task *it) __ksym;

#define BPF_TASK_ITER_ALL_PROCS 0

/* Bitmap words read per process: 64K fds. A larger table is read only
 * that far and the process reported with HOLDER_FD_TRUNCATED: user space
 * drops the pass and scans as it would without this program. */
#define MAX_WORDS 1024

/* Bytes of records per pass, within the iterator's seq buffer. */
#define MAX_BYTES (24 * 1024)

struct {
	int (*type)[BPF_MAP_TYPE_ARRAY];
	int (*max_entries)[1];
	__u32 *key;
	struct watch_set *value;
} watch SEC(".maps");

struct {
	int (*type)[BPF_MAP_TYPE_ARRAY];
	int (*max_entries)[1];
	__u32 *key;
	struct watch_tick *value;
} tick SEC(".maps");

/* The index of `v` among the first `n` entries of the set's files
 * (`inos` 0) or inodes (1), else WATCH_MAX. A global function: the
 * verifier checks it once, not once per state of the loops that call it
 * (measured with `bpftool prog load`, median of 5, bpftool's own work
 * included: 0.17 s inlined, 0.13 s as a global function). */
__attribute__((noinline)) __u32 find(const struct watch_set *set, __u32 n, __u64 v, int inos)
{
	__u32 found = WATCH_MAX;
	if (!set)
		return found;
	struct bpf_iter_num it;
	int *i;
	bpf_iter_num_new(&it, 0, n);
	while ((i = bpf_iter_num_next(&it))) {
		__u32 j = *i & (WATCH_MAX - 1);
		if ((inos ? set->ino[j] : set->file[j]) == v) {
			found = j;
			break;
		}
	}
	bpf_iter_num_destroy(&it);
	return found;
}

/* One process's table: a record per fd holding a watched socket (and, while
 * files are unknown, finding them). Returns nonzero when the output is full. */
static __always_inline int walk(struct seq_file *seq, struct watch_set *set, __u32 n,
				struct task_struct *task, __u32 ids_file, __u32 ids_socket,
				__u32 ids_icsk)
{
	struct files_struct *files = task->files;
	if (!files)
		return 0;
	struct fdtable *fdt = files->fdt;
	if (!fdt)
		return 0;
	__u64 slots_base = (__u64)fdt->fd;
	__u64 bits_base = (__u64)fdt->open_fds;
	__u32 words = fdt->max_fds / 64;
	struct holder_rec rec = { .tgid = task->tgid, .tid = task->pid };
	if (words > MAX_WORDS) {
		words = MAX_WORDS;
		rec.fd = HOLDER_FD_TRUNCATED;
		bpf_seq_write(seq, &rec, sizeof(rec));
	}
	int resolving = set->unresolved != 0;
	__u64 sock_fop = 0;
	int full = 0;
	struct bpf_iter_num wit;
	int *w;
	bpf_iter_num_new(&wit, 0, words);
	while ((w = bpf_iter_num_next(&wit))) {
		int wi = *w;
		__u64 word;
		if (bpf_probe_read_kernel(&word, sizeof(word), (void *)(bits_base + (__u64)wi * 8)))
			break;
		if (!word)
			continue;
		struct bpf_iter_num cit;
		int *c;
		bpf_iter_num_new(&cit, 0, 4);
		while ((c = bpf_iter_num_next(&cit))) {
			int shift = (*c & 3) * 16;
			if (!((word >> shift) & 0xffff))
				continue;
			int base = wi * 64 + shift;
			__u64 slots[16];
			if (bpf_probe_read_kernel(slots, sizeof(slots), (void *)(slots_base + (__u64)base * 8)))
				break;
			struct bpf_iter_num sit;
			int *s;
			bpf_iter_num_new(&sit, 0, 16);
			while ((s = bpf_iter_num_next(&sit))) {
				int k = *s & 15;
				__u64 ptr = slots[k];
				if (!ptr)
					continue;
				__u32 idx = WATCH_MAX;
				if (bloom_has(set->file_bloom, ptr))
					idx = find(set, n, ptr, 0);
				struct file *f = bpf_rdonly_cast((void *)ptr, ids_file);
				if (idx == WATCH_MAX) {
					if (!resolving)
						continue;
					/* Every socket file has the same f_op: once
					 * one socket was seen, skip other files
					 * without touching their inode. */
					__u64 fop = (__u64)f->f_op;
					if (sock_fop && fop != sock_fop)
						continue;
					struct inode *ip = f->f_inode;
					if (!ip || (ip->i_mode & S_IFMT) != S_IFSOCK)
						continue;
					sock_fop = fop;
					__u64 ino = ip->i_ino;
					if (!bloom_has(set->ino_bloom, ino))
						continue;
					idx = find(set, n, ino, 1);
					if (idx == WATCH_MAX)
						continue;
					idx &= WATCH_MAX - 1;
					if (!set->file[idx]) {
						set->file[idx] = ptr;
						bloom_add(set->file_bloom, ptr);
					}
				}
				if (seq->count >= MAX_BYTES) {
					full = 1;
					break;
				}
				rec.fd = base + k;
				rec.ino = set->ino[idx & (WATCH_MAX - 1)];
				rec.sock = sock_bits(f, ids_socket, ids_icsk);
				bpf_seq_write(seq, &rec, sizeof(rec));
			}
			bpf_iter_num_destroy(&sit);
			if (full)
				break;
		}
		bpf_iter_num_destroy(&cit);
		if (full)
			break;
	}
	bpf_iter_num_destroy(&wit);
	return full;
}

SEC("iter/task")
int holders_watch(struct bpf_iter__task *ctx)
{
	struct seq_file *seq = ctx->meta->seq;
	/* Called once per thread of our own process, and once more at the
	 * end: the main thread's call is the pass. */
	if (!ctx->task)
		return 0;
	__u32 ids_task = core_type_id_kernel(struct task_struct);
	struct task_struct *self = bpf_rdonly_cast(ctx->task, ids_task);
	if (self->pid != self->tgid)
		return 0;
	__u32 zero = 0;
	struct watch_set *set = bpf_map_lookup_elem(&watch, &zero);
	struct watch_tick *t = bpf_map_lookup_elem(&tick, &zero);
	if (!set || !t)
		return 0;
	__u32 n = set->n;
	if (!n)
		return 0;
	if (n > WATCH_MAX)
		n = WATCH_MAX;
	int resolving = set->unresolved != 0;
	__u64 since = t->since;
	__u32 ids_file = core_type_id_kernel(struct file);
	__u32 ids_socket = core_type_id_kernel(struct socket);
	__u32 ids_icsk = core_type_id_kernel(struct inet_connection_sock);

	struct bpf_iter_task it;
	struct task_struct *p;
	int full = 0;
	bpf_iter_task_new(&it, (void *)0, BPF_TASK_ITER_ALL_PROCS);
	while ((p = bpf_iter_task_next(&it))) {
		/* Untrusted reads, as in holders_task.bpf.c: cheap to verify. */
		struct task_struct *task = bpf_rdonly_cast(p, ids_task);
		if (!resolving && task->start_time < since &&
		    !bloom_has(t->pid_bloom, (__u64)task->tgid))
			continue;
		if (walk(seq, set, n, task, ids_file, ids_socket, ids_icsk)) {
			full = 1;
			break;
		}
	}
	bpf_iter_task_destroy(&it);
	if (full) {
		/* Built field by field: a constant initializer would be a
		 * .rodata map the loader context does not lay out. */
		struct holder_rec rec;
		__builtin_memset(&rec, 0, sizeof(rec));
		rec.fd = HOLDER_FD_TRUNCATED;
		bpf_seq_write(seq, &rec, sizeof(rec));
	}
	/* A complete pass has read every table: a watched inode no process
	 * held stays without a file until user space writes the set again
	 * (after every full scan), and costs no more walks of every table. A
	 * pass that ran out of room is not complete: user space writes the
	 * set again. */
	if (!full)
		set->unresolved = 0;
	return 0;
}
