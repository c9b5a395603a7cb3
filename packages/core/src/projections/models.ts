import { defineProjection } from './projection';

export type ModelVersion = {
  modelId: string;
  model: string;
  version: number;
  files: Array<{ path: string; bytes: number; sha256: string }>;
  tags: Record<string, string>;
  registeredAt: string;
};

/** The model registry of each workspace (S8.5): versions by model name, oldest first. */
export type ModelsState = Record<string, Record<string, ModelVersion[]>>;

export const modelsProjection = defineProjection<ModelsState>({
  name: 'models',
  initial: () => ({}),
  on: {
    ModelRegistered: (s, e) => {
      const byName = (s[e.data.workspaceId] ??= {});
      (byName[e.data.model] ??= []).push({
        modelId: e.data.modelId,
        model: e.data.model,
        version: e.data.version,
        files: e.data.files,
        tags: e.data.tags,
        registeredAt: e.meta.at,
      });
    },
  },
});
