/* The training loop every training stage shares: data order, micro-batches
 * over dp ranks, forward/backward, gradient all-reduce, clipping, AdamW, the
 * held-out loss, metrics, checkpoints, resume and stop requests. A stage
 * supplies only how a sample becomes (x, y, w): its objective. */
#ifndef RD_STAGES_TRAIN_TRAIN_H
#define RD_STAGES_TRAIN_TRAIN_H

#include <stdint.h>

#include "io/ckpt.h"
#include "io/metrics.h"
#include "io/shard.h"
#include "model/vlm.h"
#include "stages/train/batch.h"
#include "stages/eval/evalset.h"
#include "stages/train/loader.h"
#include "stages/run/stage.h"

typedef struct rd_trainer rd_trainer;

/* Builds one sample's response tokens x, targets y and weights w [L] from
 * slot i of the shard batch. eval = 1 for the held-out loss (fixed noise). */
typedef int (*rd_build_fn)(const rd_trainer *t, const rd_batch_ctx *c, const rd_shard_batch *data,
                           int64_t i, int eval, int32_t *x, int32_t *y, float *w);

/* Chooses the samples of global batch slots [first, first + n) of step:
 * idx[j] the training-set index to read, rows[j] anything the builder needs
 * (e.g. a revision row, or -1). NULL: the plain shuffled order. */
typedef int (*rd_pick_fn)(rd_trainer *t, int64_t step, int first, int n, int64_t *idx, int64_t *rows);

typedef struct {
  const char *stage;     /* "base", "stage1", "mask", ... */
  int round;             /* stage2 round, 0 otherwise */
  int steps;             /* optimizer steps of this stage */
  const char *init_from; /* RUN_DIR-relative checkpoint folder to start from, or NULL (fresh init) */
  rd_build_fn build;
  const void *build_ctx; /* stage options the builder reads */
  int64_t stop_at;       /* > 0: act as if a stop signal came after this step (--stop-at) */
  rd_pick_fn pick;       /* NULL: every slot from the shuffled training set */
  void *pick_ctx;
  /* > 0: the perception loss at this weight on every training step (base):
   * each image token's grid cell classified by the model's perception head,
   * the classes read from the shards' /scenes (docs/objectives.md) */
  double perception;
} rd_train_spec;

struct rd_trainer {
  rd_stage_env *env;
  rd_train_spec spec;
  rd_shardset train, eval;
  rd_evalset probe;      /* this rank's slice of the held-out samples of the probe */
  rd_loader loader;
  rd_vlm model;
  int micro;             /* samples per micro-batch on this rank */
  int accum;             /* micro-batches per step */
  rd_shard_batch data;   /* [micro] samples of the current micro-batch */
  int32_t *x, *y;        /* [micro, L] */
  float *w;              /* [micro, L] */
  int8_t *types;         /* [micro, L] token types, for builders that keep them */
  int64_t *rows;         /* [micro] what the pick function chose beside idx */
  int64_t *idx;          /* [micro] dataset indices */
  int32_t *cells;        /* [micro, Np] perception classes, with spec.perception > 0 */
  rd_ckpt_tensor *ct;    /* [n tensors] the model's table for checkpoints */
  int n_ct;
  char ckpt_dir[1024];
  rd_metrics log;
  int64_t step;          /* optimizer steps done */
  int64_t bad_steps;     /* non-finite steps in a row */
  int64_t skipped;       /* non-finite steps in all */
};

/* Eq. 1 (stages/train/base.c): the builder of base and of the mask-trained baseline. */
int rd_build_mask(const rd_trainer *t, const rd_batch_ctx *c, const rd_shard_batch *data, int64_t i, int eval,
                  int32_t *x, int32_t *y, float *w);

/* Eq. 2/3 for sample i of data (stages/train/stage1.c), with the options of the
 * config's stage1 section (rd_stage1_opts_of): the builder of stage1 and of
 * Stage II's Stage I share. */
int rd_build_stage1(const rd_trainer *t, const rd_stage1_opts *o, const rd_batch_ctx *c,
                    const rd_shard_batch *data, int64_t i, int eval, int32_t *x, int32_t *y, float *w);
rd_stage1_opts rd_stage1_opts_of(const rd_stage_env *env);

/* Runs the stage to its end (or a stop request: RD_ESTOP after a
 * checkpoint). Writes the done marker when finished. */
int rd_train_run(rd_stage_env *env, const rd_train_spec *spec);

/* The held-out loss of the current parameters (also used by tests). */
int rd_train_eval_loss(rd_trainer *t, double *loss);
/* The perception probe of the current parameters on the held-out samples
 * of the loss, with their images and with others' (summed over dp). */
int rd_train_eval_probe(rd_trainer *t, rd_probe_counts *image, rd_probe_counts *blind);

#endif
