/* ShapesCap, the synthetic captioning world whose every caption can be
 * checked exactly. The one header other folders include. */
#ifndef RD_DATA_SHAPES_H
#define RD_DATA_SHAPES_H

#include "data/caption.h"
#include "data/facts.h"
#include "data/lexicon.h"
#include "data/scene.h"

#endif
