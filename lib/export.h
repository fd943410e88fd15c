/*
 * export.h - a model file's tensors as safetensors, the format PyTorch,
 * numpy (through the safetensors package, or a few lines of json and
 * numpy.frombuffer) and others load: an u64 little-endian header length, a
 * JSON header naming each tensor's dtype ("F32"), shape and byte offsets
 * (with the model's metadata under "__metadata__"), then the data.
 */
#ifndef CS_EXPORT_H
#define CS_EXPORT_H

#include "model.h"
#include "modelfile.h"

/*
 * Write the tensors of mf to fp as safetensors. Shapes come from the
 * metadata "shape.NAME" (cs-formats(5)); a file without them (written
 * before they were stored) takes them from cfg when given, else each
 * tensor is one-dimensional. The AdamW moments of a checkpoint
 * ("adam.m", "adam.v") and the best model a checkpoint keeps
 * ("train.best_params") are left out unless with_optim.
 */
int cs_export_safetensors(const cs_modelfile *mf, const cs_bert_config *cfg, int with_optim,
			  FILE *fp, const char *name, cs_error *err);

#endif
