// The posts, shared by the page and the actions of this process (next start is one process).
const posts = [];
for (let id = 1; id <= 20; id++) {
  posts.push({ id, title: `Post number ${id}`, content: `The content of post ${id}.`, likes: 0 });
}
let nextId = 21;

export function listPosts() {
  return posts;
}

export function addPost(title, content) {
  posts.unshift({ id: nextId++, title, content, likes: 0 });
  // Keep the workload the same size as the other systems': 20 posts.
  if (posts.length > 20) posts.length = 20;
}

export function like(id) {
  const post = posts.find((p) => p.id === id);
  if (!post) return 0;
  post.likes += 1;
  return post.likes;
}
