/* The typed configuration of a run.
 *
 * Loaded from YAML by libyaml (io/config.c) against one table of keys
 * (name, type, default, range, doc), so the loader, `rediff config show`,
 * `--set` overrides and docs/config.md all follow the same table. Every field
 * has a default; a config file only names what differs. Unknown keys are
 * errors. */
#ifndef RD_IO_CONFIG_H
#define RD_IO_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define RD_CFG_STR 256
#define RD_CFG_LONGSTR 1024
#define RD_CFG_LIST 16

typedef struct {
  int n;
  int v[RD_CFG_LIST];
} rd_cfg_ints;

typedef struct {
  int n;
  char v[RD_CFG_LIST][RD_CFG_STR];
} rd_cfg_strs;

typedef struct {
  int d_model;        /* width of the language model */
  int n_layers;       /* language-model blocks */
  int n_heads;        /* attention heads (divisible by parallel.tp) */
  int image_heads;    /* LM heads per layer (the first ones) that attend to image tokens only */
  int d_ff;           /* SwiGLU hidden size */
  int vision_layers;  /* transformer blocks in the vision tower (0 allowed) */
  int vision_d;       /* width of the vision tower */
  int vision_heads;
  int vision_d_ff;    /* vision MLP hidden size (SwiGLU as in the LM blocks) */
  int image_size;     /* H = W of the images */
  int patch;          /* P of the P x P patches; must divide image_size */
  int gen_len;        /* response length L, EOS-padded */
  double rope_theta;
  double norm_eps;    /* RMSNorm epsilon */
  double init_std;    /* normal init scale of weight matrices */
  int vision_fan_in;  /* vision tower and projector matrices start at std 1/sqrt(fan-in) */
  int grid_pos;       /* image tokens: normed, plus a learned embedding per grid cell, no RoPE; image heads unrotated */
  int cell_classes;   /* classes of the perception head on the image tokens (0: no head) */
  int vocab_multiple; /* vocabulary padded to a multiple of this (tensor parallel) */
} rd_model_cfg;

typedef struct {
  int n_train;      /* training samples */
  int n_eval;       /* held-out samples */
  int shard_size;   /* samples per shard file */
  int min_objects;
  int max_objects;  /* objects per scene, 1 .. 9 (3 x 3 grid) */
  int max_relations;/* relation sentences per caption */
  int jitter;       /* +- pixels of object centre jitter */
  int compress;     /* deflate level of shards, 0 = none */
  uint64_t seed;    /* data seed (scenes, phrasings, hallucinations) */
  char prompt[RD_CFG_STR]; /* the instruction tokens before the response */
} rd_data_cfg;

typedef struct {
  int batch_size;     /* global batch (samples per optimizer step) */
  int grad_accum;     /* micro-batches per step on each dp rank */
  double lr;          /* peak learning rate */
  int warmup;         /* linear warmup steps */
  double min_lr_frac; /* cosine decays to lr * min_lr_frac */
  double weight_decay;
  double beta1, beta2, adam_eps;
  double grad_clip;   /* global grad-norm clip, 0 = off */
  uint64_t seed;      /* init, data order and noise seed */
  int ckpt_every;     /* steps between checkpoints */
  int keep;           /* checkpoints kept per stage */
  int eval_every;     /* steps between held-out losses */
  int eval_batches;   /* held-out batches per evaluation */
  int log_every;      /* steps between log lines when not on a terminal */
  int threads;        /* OpenMP / OpenBLAS threads per rank */
  int max_bad_steps;  /* consecutive non-finite steps before the run stops */
} rd_train_cfg;

typedef struct {
  int steps;
  double perception; /* weight of the perception loss on the image tokens (0: off) */
} rd_base_cfg;

typedef struct {
  int steps;
  double replace_prob; /* syntax noise probability q */
  int dynamic_rate;    /* q = t when t < replace_prob (the paper's variant) */
  int syntax;          /* inject syntax noise */
  int hallucination;   /* inject hallucinated spans */
  double halluc_frac;  /* fraction of samples given their hallucinated caption */
} rd_stage1_cfg;

typedef struct {
  rd_cfg_ints step_counts; /* decoding steps per draft, e.g. 64 16 8 */
  int n_samples;           /* training samples drafted per round */
  char mode[RD_CFG_STR];   /* refine | remask */
} rd_draft_cfg;

typedef struct {
  char kind[RD_CFG_STR];              /* scene | reference | command */
  char command[RD_CFG_LONGSTR];       /* for kind: command */
  double timeout_s;
  int retries;
  char length_policy[RD_CFG_STR];     /* drop | remask */
} rd_expert_cfg;

typedef struct {
  int steps;
  int rounds;
  double stage1_mix; /* fraction of each batch that is stage1 data */
} rd_stage2_cfg;

typedef struct {
  rd_cfg_ints tokens_per_step;
  rd_cfg_strs modes;   /* refine, remask */
  int n_samples;       /* eval samples decoded per setting */
  int batch;           /* captions decoded together */
  int bootstrap;       /* resamples of the 95% intervals over images */
  rd_cfg_strs models;  /* base, mask, stage1, stage2 (the last round), stage2_r<R> */
  int block;           /* semi-autoregressive block length, 0 = one block */
  double temperature;  /* 0 = argmax, > 0 = Gumbel-max */
  double refine_tau;   /* refine: revise only where confidence >= tau */
  double refine_frac;  /* refine: revise only this most confident fraction */
} rd_eval_cfg;

typedef struct {
  int ranks; /* MPI ranks `rediff pipeline` launches per stage */
  int tp;    /* tensor-parallel size; dp = ranks / tp */
} rd_parallel_cfg;

typedef struct {
  char device[RD_CFG_STR];    /* cpu | cuda */
  char precision[RD_CFG_STR]; /* fp32 | bf16 */
} rd_runtime_cfg;

typedef struct {
  char partition[RD_CFG_STR];
  char account[RD_CFG_STR];
  char qos[RD_CFG_STR];
  int nodes;
  int tasks_per_node;
  int gpus_per_node;
  int cpus_per_task;
  char time[RD_CFG_STR];       /* per-job time limit, HH:MM:SS */
  int signal_lead_s;           /* seconds before the limit the job is warned */
  char launcher[RD_CFG_STR];   /* srun | mpirun */
  rd_cfg_strs setup;           /* shell lines run before the stage (modules) */
  rd_cfg_strs extra;           /* extra #SBATCH lines */
  int max_requeues;            /* times one job requeues itself after a stop */
  /* Per-stage overrides: "" = time; 0 = nodes x tasks_per_node ranks. */
  char time_data[RD_CFG_STR], time_base[RD_CFG_STR], time_stage1[RD_CFG_STR], time_draft[RD_CFG_STR],
      time_expert[RD_CFG_STR], time_stage2[RD_CFG_STR], time_eval[RD_CFG_STR];
  int ranks_base, ranks_stage1, ranks_draft, ranks_expert, ranks_stage2, ranks_eval;
} rd_slurm_cfg;

typedef struct {
  char run_dir[RD_CFG_STR];
  rd_model_cfg model;
  rd_data_cfg data;
  rd_train_cfg train;
  rd_base_cfg base;
  rd_stage1_cfg stage1;
  rd_draft_cfg draft;
  rd_expert_cfg expert;
  rd_stage2_cfg stage2;
  rd_eval_cfg eval;
  rd_parallel_cfg parallel;
  rd_runtime_cfg runtime;
  rd_slurm_cfg slurm;
  char source[RD_CFG_STR]; /* the file it was loaded from, or "(defaults)" */
} rd_config;

/* Fills every key with its default. */
void rd_config_defaults(rd_config *cfg);
/* A config file is a regular file of at most this many bytes. */
#define RD_CFG_MAX_BYTES ((size_t)1 << 20)

/* Defaults, then the YAML file at path (NULL: defaults only), then each
 * "key.path=value" override in order. Errors name the file (or the override)
 * with line and column. The file must be regular (no FIFO or device) and at
 * most RD_CFG_MAX_BYTES long; YAML nested deeper than 16 levels is refused.
 * On error *cfg is unspecified. */
int rd_config_load(rd_config *cfg, const char *path, const char *const *overrides, int n_overrides);
/* Applies one "key.path=value" override, validated like a file value. */
int rd_config_set(rd_config *cfg, const char *assignment);
/* Cross-key checks (patch divides image_size, min <= max objects, ...), and
 * runtime.device / runtime.precision against the model backends compiled
 * in: without a CUDA backend (RD_MODEL_CUDA undefined, as in every build of
 * this version) device cuda is refused, and so is precision bf16, which
 * needs it. */
int rd_config_validate(const rd_config *cfg);
/* Writes the effective config as YAML that loads back to the same config. */
int rd_config_emit(const rd_config *cfg, FILE *out);
/* Same, into a malloc'd string (for checkpoints and the cross-rank hash). */
int rd_config_to_yaml(const rd_config *cfg, char **yaml);
/* Every key as one line "section.key: value", in table order, into a
 * malloc'd string: two configs differ exactly where these lines do. */
int rd_config_to_lines(const rd_config *cfg, char **text);
/* FNV-1a 64 of the emitted YAML: equal configs hash equal. */
uint64_t rd_config_hash(const rd_config *cfg);
/* Writes docs-ready Markdown of every key (type, default, range, meaning). */
int rd_config_doc(FILE *out);

#endif
