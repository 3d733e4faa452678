/**
 * The MediaPipe Face Mesh tessellation: 880 triangles over the 468 landmarks, covering the face
 * inside its outline except the mouth opening (from MediaPipe, Apache-2.0, as shipped in
 * @vladmandic/human's facemeshcoords.ts). Unlike a Delaunay triangulation of one photo's
 * landmarks it follows the face's surface, so its triangles do not fold as expressions change.
 * The table is data (tessellation.json, one triangle's landmark indices a row); here it is flat.
 */
import triangles from './tessellation.json' with { type: 'json' };

export const FACE_MESH_TRIANGLES: readonly number[] = triangles.flat();
