'use server'

import { revalidatePath } from 'next/cache'
import { redirect } from 'next/navigation'
import { addPost, like } from '../data'

export async function createPost(formData) {
  addPost(String(formData.get('title') || ''), String(formData.get('content') || ''))
  revalidatePath('/posts')
  redirect('/posts')
}

export async function incrementLike(id) {
  const likes = like(id)
  revalidatePath('/posts')
  return likes
}
