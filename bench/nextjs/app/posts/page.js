import { createPost, incrementLike } from '../actions'
import { listPosts } from '../../data'

export const revalidate = 3600

export default function Page() {
  const posts = listPosts()
  return (
    <main>
      <h1>Posts ({posts.length})</h1>
      <form action={createPost}>
        <input name="title" />
        <input name="content" />
        <button type="submit">Create</button>
      </form>
      <ul>
        {posts.map((post) => (
          <li key={post.id} id={`post-${post.id}`}>
            <h2>{post.title}</h2>
            <p>{post.content}</p>
            <form action={incrementLike.bind(null, post.id)}>
              <button type="submit">Like <span className="count">{post.likes}</span></button>
            </form>
          </li>
        ))}
      </ul>
    </main>
  )
}
