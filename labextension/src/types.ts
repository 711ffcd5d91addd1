/** The JSON the server sends: `ipydock.models` dataclasses through `to_record`. */

export interface EngineInfo {
  engine: string;
  where: string;
}

export interface ImageInfo {
  id: string;
  repository: string;
  tag: string;
  created: string | null;
  size: number;
  dangling?: boolean;
  [key: string]: unknown;
}

export interface HistoryRow {
  id: string;
  created: string | null;
  created_by: string;
  size: number;
  comment: string;
  [key: string]: unknown;
}

export interface LayerFile {
  path: string;
  change: string;
  type: string;
  size: number;
  wasted: number;
}

export interface LayerFiles {
  index: number;
  diff_id: string;
  created_by: string;
  size: number;
  wasted: number;
  files: LayerFile[];
}

export interface ContainerInfo {
  id: string;
  name: string;
  image: string;
  status: string;
  status_text: string;
  created: string;
  [key: string]: unknown;
}

export interface VolumeInfo {
  name: string;
  driver: string;
  [key: string]: unknown;
}

export interface NetworkInfo {
  id: string;
  name: string;
  driver: string;
  [key: string]: unknown;
}

export interface DiskUsage {
  type: string;
  total: number;
  active: number;
  size: number;
  reclaimable: number;
  [key: string]: unknown;
}

export interface PruneResult {
  deleted: { action: string; target: string }[];
  space_reclaimed: number;
}
