/* SPDX-License-Identifier: (MIT OR GPL-2.0) */
/*
 * The kernel types the holder iterators touch, trimmed to the fields they
 * read. Every struct is preserve_access_index: field offsets are relocated
 * against the running kernel's BTF when the program loads (CO-RE), so this
 * file does not depend on the kernel of the machine that built the object.
 * Names must match the kernel's; layout and the other fields need not.
 */
#ifndef SOCKMAP_VMLINUX_H
#define SOCKMAP_VMLINUX_H

typedef unsigned char __u8;
typedef unsigned short __u16;
typedef unsigned int __u32;
typedef unsigned long long __u64;
typedef int pid_t;
typedef unsigned short umode_t;

#pragma clang attribute push(__attribute__((preserve_access_index)), apply_to = record)

struct seq_file {
	unsigned long count;
};

struct bpf_iter_meta {
	struct seq_file *seq;
	__u64 session_id;
	__u64 seq_num;
};

struct files_struct;

struct ns_common {
	unsigned int inum;
};

struct net {
	struct ns_common ns;
};

struct nsproxy {
	struct net *net_ns;
};

struct task_struct {
	__u64 start_time;
	pid_t pid;
	pid_t tgid;
	struct task_struct *group_leader;
	struct files_struct *files;
	struct nsproxy *nsproxy;
};

struct bpf_iter__task {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
};

struct inode {
	umode_t i_mode;
	unsigned long i_ino;
};

struct file_operations;

struct file {
	const struct file_operations *f_op;
	struct inode *f_inode;
	void *private_data;
};

struct bpf_iter__task_file {
	struct bpf_iter_meta *meta;
	struct task_struct *task;
	__u32 fd;
	struct file *file;
};

struct fdtable {
	unsigned int max_fds;
	struct file **fd;
	unsigned long *open_fds;
};

struct files_struct {
	struct fdtable *fdt;
};

struct sock_common {
	volatile unsigned char skc_state;
	unsigned char skc_reuse : 4;
	unsigned char skc_reuseport : 1;
};

struct sock {
	struct sock_common __sk_common;
	__u16 sk_protocol;
};

typedef struct {
	int counter;
} atomic_t;

struct request_sock_queue {
	atomic_t qlen;
};

struct inet_connection_sock {
	struct request_sock_queue icsk_accept_queue;
};

typedef enum {
	SS_FREE = 0,
	SS_UNCONNECTED,
	SS_CONNECTING,
	SS_CONNECTED,
	SS_DISCONNECTING,
} socket_state;

struct socket {
	socket_state state;
	struct sock *sk;
};

#pragma clang attribute pop

/* Opaque iterator state for bpf_iter_num_* (kernel >= 6.4). */
struct bpf_iter_num {
	__u64 __opaque[1];
} __attribute__((aligned(8)));

/* Opaque iterator state for bpf_iter_task_* (kernel >= 6.7). */
struct bpf_iter_task {
	__u64 __opaque[3];
} __attribute__((aligned(8)));

#endif
